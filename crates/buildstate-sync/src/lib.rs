//! Object-storage copies of build documents (SPEC §4): S3, Azure Blob, GCS and a local
//! directory, through one abstraction (`Arc<dyn object_store::ObjectStore>`).
//!
//! A copy is the build's export document (`BuildDocument`, SPEC §2) at
//! `PREFIX/<provider>/<build-number>/state.json`, where `<provider>` is the document's
//! `provider` (`unknown` when it has none). It is what a fresh worker in another cloud
//! pulls to resume the build.
//!
//! # Targets
//!
//! | URL | store |
//! |---|---|
//! | `s3://bucket/prefix` | Amazon S3 or an S3-compatible endpoint |
//! | `az://container/prefix`, `azure://container/prefix` | Azure Blob Storage |
//! | `gs://bucket/prefix` | Google Cloud Storage |
//! | `file:///dir/prefix` | a local directory (tests, a shared mount) |
//!
//! Endpoints and credentials come from the environment (`SyncTarget::parse`), or from an
//! explicit `Env` (`SyncTarget::parse_with_env`), under the names the clouds' own tools
//! use:
//!
//! - **S3**: every `AWS_*` variable object_store knows — `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`
//!   (default `us-east-1`), `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` (an S3-compatible
//!   endpoint, addressed path-style), `AWS_ALLOW_HTTP`, … Without keys, the instance's
//!   role is used.
//! - **Azure**: `AZURE_STORAGE_ACCOUNT` and `AZURE_STORAGE_KEY` (the az CLI's names; also
//!   `AZURE_STORAGE_ACCOUNT_NAME`/`AZURE_STORAGE_ACCOUNT_KEY` and every other `AZURE_*`
//!   variable object_store knows: SAS, client secret, managed identity, …),
//!   `AZURE_STORAGE_ENDPOINT` (the account URL, e.g.
//!   `http://127.0.0.1:10000/devstoreaccount1`). `AZURITE_BLOB_STORAGE_URL`
//!   (`http://127.0.0.1:10000`) or `AZURE_STORAGE_USE_EMULATOR=true` selects Azurite, with
//!   its published development account and key unless others are given.
//! - **GCS**: `GOOGLE_SERVICE_ACCOUNT` (a key file), `GOOGLE_SERVICE_ACCOUNT_KEY` (its
//!   JSON), `GOOGLE_APPLICATION_CREDENTIALS`, … else the instance's service account.
//!   `STORAGE_EMULATOR_HOST` (`127.0.0.1:4443` or a URL) selects an emulator: no
//!   credentials, and writes go through the JSON upload API that fake-gcs-server enforces
//!   preconditions on (see `connect/gcs_emulator.rs`).
//!
//! Plain `http://` is allowed without asking only for endpoints on the loopback
//! interface (emulators); elsewhere set `AWS_ALLOW_HTTP`/`AZURE_ALLOW_HTTP`/
//! `GOOGLE_ALLOW_HTTP`. TLS is rustls with the `ring` provider, the only one in the
//! graph; a program that installs its own process default first keeps it.
//!
//! # Conflicts: nobody silently overwrites a newer copy
//!
//! Every write is conditional: create-if-absent for a copy never seen, else
//! replace-if-unchanged since the ETag/version this syncer last wrote or read (kept in
//! memory and in `<state dir>/state.json`), and only when that copy was older than the
//! document being pushed. When the condition fails, the copy is re-read and compared by
//! history, not just by version: the same document is `AlreadyThere`; an earlier state
//! of our own history is replaced with a new condition (bounded rounds); a later state of
//! it is `RemoteNewer` and left alone; a copy that another machine continued from the
//! same starting point is `Diverged` — reported, never overwritten, and never taken as
//! the base of a later write; another build at the same path is `OtherBuild`.
//!
//! # Failures never block a transition
//!
//! Connection failures, 5xx, 429 and timeouts are retried with exponential backoff and
//! jitter, and every operation ends within `SyncOptions::op_timeout` (default 5 s),
//! retries included. A push that runs out of time lands in `<state dir>/backlog/` (the
//! newest document per build) and returns `PushOutcome::Backlogged`; `flush_backlog`
//! pushes the queue when the endpoint is back.
//!
//! # Cargo features
//!
//! `s3`, `azure`, `gcs` (all default) compile the cloud clients; without them only
//! `file://` targets exist and no HTTP or TLS code is built. The core crates never depend
//! on this one.

mod connect;
mod env;
mod error;
mod lineage;
mod outcome;
mod push;
mod retry;
mod state;
mod status;
mod synced;
mod syncer;
mod target;

pub use env::Env;
pub use error::SyncError;
pub use outcome::{FlushReport, PushOutcome, RemoteEntry, SyncState, SyncStatus};
pub use retry::SyncOptions;
pub use synced::SyncedStore;
pub use syncer::{Syncer, UNKNOWN_PROVIDER};
pub use target::{SyncTarget, TargetKind};
