use std::sync::Arc;

use object_store::ObjectStore;
use object_store::StaticCredentialProvider;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder, GoogleConfigKey};

use super::gcs_emulator::EmulatorConnector;
use super::http::{client_options, install_crypto_provider, no_retries};
use crate::env::is_loopback_http;
use crate::{SyncOptions, SyncTarget};

pub(super) fn connect(
    target: &SyncTarget,
    options: &SyncOptions,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    install_crypto_provider();
    let env = target.env();
    let emulator = env.get("STORAGE_EMULATOR_HOST").map(|host| {
        let base = if host.contains("://") { host.to_owned() } else { format!("http://{host}") };
        base.trim_end_matches('/').to_owned()
    });
    let mut client = client_options(options);
    if emulator.as_deref().is_some_and(is_loopback_http) {
        client = client.with_allow_http(true);
    }
    let mut builder = GoogleCloudStorageBuilder::new().with_client_options(client).with_retry(no_retries());
    for (key, value) in env.with_prefix("GOOGLE_") {
        if let Ok(key) = key.to_ascii_lowercase().parse::<GoogleConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    // STORAGE_EMULATOR_HOST is what Google's own client libraries honour: `host:port`
    // or a URL. An emulator takes no credentials. `skip_signature` alone is not enough:
    // object_store 0.14 still fetches a token for uploads (from the instance metadata
    // server, which is not there), so give it an empty static one.
    if let Some(base) = emulator {
        let anonymous = StaticCredentialProvider::new(GcpCredential { bearer: String::new() });
        builder = builder
            .with_base_url(&base)
            .with_skip_signature(true)
            .with_credentials(Arc::new(anonymous))
            .with_http_connector(EmulatorConnector::new(&base));
    }
    let store = builder.with_bucket_name(target.bucket()).build()?;
    Ok(Arc::new(store))
}
