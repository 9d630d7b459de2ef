//! Where the tests' targets live: the real emulators started by
//! `scripts/services-objstore.sh` (moto, azurite, fake-gcs-server on 127.0.0.1) and a
//! temporary directory. A missing emulator fails the test with the command to run.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use buildstate_sync::{Env, SyncOptions, SyncTarget, Syncer};
use tempfile::TempDir;

/// One bucket/container per emulator; each test writes under its own prefix.
pub const BUCKET: &str = "buildstate-test";
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    S3,
    Azure,
    Gcs,
    File,
}

fn required(var: &str) -> String {
    std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{var} is not set: the object-store tests need the emulators. Run \
             `source scripts/services.sh && start_services` in this shell first, then the tests \
             (they fail rather than skip, so CI cannot pass without them)"
        )
    })
}

/// A port on 127.0.0.1 that nothing listens on: connections are refused at once.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    port
}

/// Bounds short enough to keep the failure tests quick, long enough for a slow CI box.
pub fn quick_options() -> SyncOptions {
    SyncOptions { op_timeout: Duration::from_millis(1500), ..SyncOptions::default() }
}

/// One test's view of a backend: its URL (unique prefix), environment and temp dirs.
#[derive(Debug)]
pub struct Fixture {
    pub backend: Backend,
    pub url: String,
    pub env: Env,
    /// For `file://`: the directory the copies live in. For the others: scratch space.
    pub root: TempDir,
}

impl Fixture {
    /// Prepares the backend (bucket or container created if missing) and a prefix that no
    /// other test or run uses.
    pub async fn new(backend: Backend, test: &str) -> Fixture {
        let prefix =
            format!("{test}-{:x}-{:08x}", jiff::Timestamp::now().as_millisecond(), fastrand::u32(..));
        let root = tempfile::tempdir().expect("tempdir");
        let (url, env) = match backend {
            Backend::S3 => {
                let endpoint = required("BUILDSTATE_TEST_S3_ENDPOINT");
                create_s3_bucket(&endpoint).await;
                (format!("s3://{BUCKET}/{prefix}"), s3_env(&endpoint))
            }
            Backend::Azure => {
                let endpoint = required("BUILDSTATE_TEST_AZURE_ENDPOINT");
                create_azure_container(&endpoint).await;
                (format!("az://{BUCKET}/{prefix}"), azure_env(&endpoint))
            }
            Backend::Gcs => {
                let endpoint = required("BUILDSTATE_TEST_GCS_ENDPOINT");
                create_gcs_bucket(&endpoint).await;
                (format!("gs://{BUCKET}/{prefix}"), gcs_env(&endpoint))
            }
            Backend::File => (format!("file://{}/{prefix}", root.path().display()), Env::default()),
        };
        Fixture { backend, url, env, root }
    }

    pub fn target(&self) -> SyncTarget {
        SyncTarget::parse_with_env(&self.url, self.env.clone()).expect("target")
    }

    /// The same target URL with the endpoint moved to a closed port on 127.0.0.1.
    pub fn target_down(&self) -> SyncTarget {
        let port = closed_port();
        let env = match self.backend {
            Backend::S3 => s3_env(&format!("http://127.0.0.1:{port}")),
            Backend::Azure => azure_env(&format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")),
            Backend::Gcs => gcs_env(&format!("http://127.0.0.1:{port}")),
            Backend::File => panic!("a directory has no endpoint to take down"),
        };
        SyncTarget::parse_with_env(&self.url, env).expect("target")
    }

    /// A syncer with its own state directory `name` under this fixture.
    pub fn syncer(&self, name: &str) -> Syncer {
        Syncer::new(self.target(), self.state_dir(name)).expect("syncer")
    }

    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.root.path().join(format!("state-{name}"))
    }
}

fn s3_env(endpoint: &str) -> Env {
    // moto accepts any key pair but wants every request signed.
    Env::from_pairs([
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "buildstate-test"),
        ("AWS_SECRET_ACCESS_KEY", "buildstate-test"),
        ("AWS_REGION", "us-east-1"),
    ])
}

fn azure_account() -> (String, String) {
    let get = |var: &str, default: &str| {
        std::env::var(var).ok().filter(|v| !v.is_empty()).unwrap_or(default.into())
    };
    (get("BUILDSTATE_TEST_AZURE_ACCOUNT", AZURITE_ACCOUNT), get("BUILDSTATE_TEST_AZURE_KEY", AZURITE_KEY))
}

fn azure_env(endpoint: &str) -> Env {
    let (account, key) = azure_account();
    Env::from_pairs([
        ("AZURE_STORAGE_ACCOUNT", account.as_str()),
        ("AZURE_STORAGE_KEY", key.as_str()),
        ("AZURE_STORAGE_ENDPOINT", endpoint),
    ])
}

fn gcs_env(endpoint: &str) -> Env {
    Env::from_pairs([("STORAGE_EMULATOR_HOST", endpoint)])
}

fn http() -> reqwest::Client {
    // reqwest is built without a provider feature (one provider in the graph: ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client")
}

/// Creating what already exists answers 409 on every emulator; both mean "there".
fn check_created(what: &str, status: reqwest::StatusCode, body: &str) {
    assert!(
        status.is_success() || status == reqwest::StatusCode::CONFLICT,
        "creating {what}: {status} {body}"
    );
}

async fn create_s3_bucket(endpoint: &str) {
    let url = format!("{}/{BUCKET}", endpoint.trim_end_matches('/'));
    let r = http().put(&url).header("content-type", "text/plain").send().await;
    let r = r.unwrap_or_else(|e| panic!("moto at {endpoint} does not answer ({e}); run start_services"));
    let status = r.status();
    check_created("the S3 bucket", status, &r.text().await.unwrap_or_default());
}

async fn create_gcs_bucket(endpoint: &str) {
    let url = format!("{}/storage/v1/b", endpoint.trim_end_matches('/'));
    let body = serde_json::json!({ "name": BUCKET }).to_string();
    let r = http().post(&url).header("content-type", "application/json").body(body).send().await;
    let r = r.unwrap_or_else(|e| {
        panic!("fake-gcs-server at {endpoint} does not answer ({e}); run start_services")
    });
    let status = r.status();
    check_created("the GCS bucket", status, &r.text().await.unwrap_or_default());
}

/// Azurite checks Shared Key signatures even in `--loose` mode, so the container is
/// created with a signed request (the Blob service's Shared Key scheme).
async fn create_azure_container(endpoint: &str) {
    let (account, key) = azure_account();
    let url = format!("{}/{BUCKET}?restype=container", endpoint.trim_end_matches('/'));
    let path = reqwest::Url::parse(&url).expect("container url").path().to_owned();
    let date = jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let version = "2021-08-06";
    // VERB, then 11 standard headers (all empty here), canonical x-ms-* headers, resource.
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}{path}\nrestype:container"
    );
    let secret = BASE64.decode(&key).expect("the account key is base64");
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), to_sign.as_bytes());
    let auth = format!("SharedKey {account}:{}", BASE64.encode(tag.as_ref()));
    let r = http()
        .put(&url)
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("authorization", auth)
        .send()
        .await;
    let r = r.unwrap_or_else(|e| panic!("azurite at {endpoint} does not answer ({e}); run start_services"));
    let status = r.status();
    check_created("the Azure container", status, &r.text().await.unwrap_or_default());
}
