use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use super::http::{client_options, install_crypto_provider, no_retries};
use crate::env::is_loopback_http;
use crate::{SyncOptions, SyncTarget};

/// Azurite's published development account (not a secret).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub(super) fn connect(
    target: &SyncTarget,
    options: &SyncOptions,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    install_crypto_provider();
    let env = target.env();
    let mut builder =
        MicrosoftAzureBuilder::new().with_client_options(client_options(options)).with_retry(no_retries());
    for (key, value) in env.with_prefix("AZURE_") {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AzureConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    // The names the az CLI uses, next to object_store's own.
    let account = env.first(&["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"]);
    let key = env.first(&["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"]);
    if let Some(account) = account {
        builder = builder.with_account(account);
    }
    if let Some(key) = key {
        builder = builder.with_access_key(key);
    }
    let mut endpoint = env.first(&["AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"]).map(str::to_owned);
    // Azurite: AZURITE_BLOB_STORAGE_URL (or AZURE_STORAGE_USE_EMULATOR) names the
    // emulator; account and key default to its published development pair. We address it
    // as an ordinary account at a custom endpoint (path style), rather than through
    // object_store's emulator switch, because that switch reads the process environment
    // directly and a target must be configurable from an explicit `Env`.
    let emulator = env.get("AZURITE_BLOB_STORAGE_URL");
    if endpoint.is_none() && (emulator.is_some() || env.flag("AZURE_STORAGE_USE_EMULATOR")) {
        let account = account.unwrap_or(EMULATOR_ACCOUNT);
        let base = emulator.unwrap_or("http://127.0.0.1:10000").trim_end_matches('/');
        endpoint = Some(format!("{base}/{account}"));
        builder = builder.with_account(account).with_access_key(key.unwrap_or(EMULATOR_KEY));
    }
    if let Some(endpoint) = endpoint {
        if is_loopback_http(&endpoint) {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    builder = builder.with_config(AzureConfigKey::UseEmulator, "false");
    let store = builder.with_container_name(target.bucket()).build()?;
    Ok(Arc::new(store))
}
