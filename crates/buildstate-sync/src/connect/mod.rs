//! Builds the one `Arc<dyn ObjectStore>` a target talks through. Everything past this
//! module is the same code for every cloud.

use std::sync::Arc;

use object_store::ObjectStore;

use crate::{SyncError, SyncOptions, SyncTarget, TargetKind};

#[cfg(feature = "azure")]
mod azure;
#[cfg(feature = "gcs")]
mod gcs;
#[cfg(feature = "gcs")]
mod gcs_emulator;
mod local;
#[cfg(feature = "s3")]
mod s3;

pub(crate) fn connect(target: &SyncTarget, options: &SyncOptions) -> Result<Arc<dyn ObjectStore>, SyncError> {
    let config = |source| SyncError::Config { target: target.url().to_owned(), source };
    match target.kind() {
        TargetKind::File => local::connect(target).map_err(config),
        #[cfg(feature = "s3")]
        TargetKind::S3 => s3::connect(target, options).map_err(config),
        #[cfg(feature = "azure")]
        TargetKind::Azure => azure::connect(target, options).map_err(config),
        #[cfg(feature = "gcs")]
        TargetKind::Gcs => gcs::connect(target, options).map_err(config),
        #[allow(unreachable_patterns)] // reachable only when a cloud feature is off
        other => {
            let _ = options;
            Err(SyncError::InvalidUrl {
                url: target.url().to_owned(),
                reason: format!("this buildstate was built without {other:?} support (cargo feature)"),
            })
        }
    }
}

#[cfg(feature = "cloud")]
mod http {
    use std::time::Duration;

    use object_store::{ClientOptions, RetryConfig};

    use crate::SyncOptions;

    /// One TLS stack for every cloud: rustls on `ring`. Installing the process default
    /// is idempotent (a provider the program installed first wins) and keeps reqwest
    /// from looking for a provider feature we deliberately did not enable.
    pub(crate) fn install_crypto_provider() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    /// Every request is bounded by the operation's bound; the retry loop in
    /// `crate::retry` is the only one, so object_store's own retries are off.
    pub(crate) fn client_options(options: &SyncOptions) -> ClientOptions {
        ClientOptions::new()
            .with_timeout(options.op_timeout)
            .with_connect_timeout(options.op_timeout)
            // Every object this crate writes is a JSON document (and moto wants a type).
            .with_default_content_type("application/json")
    }

    pub(crate) fn no_retries() -> RetryConfig {
        RetryConfig { max_retries: 0, retry_timeout: Duration::ZERO, ..RetryConfig::default() }
    }
}
