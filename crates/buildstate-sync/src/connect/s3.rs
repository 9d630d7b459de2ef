use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use super::http::{client_options, install_crypto_provider, no_retries};
use crate::env::is_loopback_http;
use crate::{SyncOptions, SyncTarget};

pub(super) fn connect(
    target: &SyncTarget,
    options: &SyncOptions,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    install_crypto_provider();
    let env = target.env();
    let mut builder =
        AmazonS3Builder::new().with_client_options(client_options(options)).with_retry(no_retries());
    // Every AWS_* variable object_store knows (keys, token, region, endpoint, …), as the
    // AWS tools read them.
    for (key, value) in env.with_prefix("AWS_") {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    if env.first(&["AWS_REGION", "AWS_DEFAULT_REGION"]).is_none() {
        builder = builder.with_region("us-east-1");
    }
    let endpoint = env.first(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]);
    if endpoint.is_some_and(is_loopback_http) {
        builder = builder.with_allow_http(true);
    }
    // After the variables, so that AWS_BUCKET cannot redirect a target named by URL.
    let store = builder.with_bucket_name(target.bucket()).build()?;
    Ok(Arc::new(store))
}
