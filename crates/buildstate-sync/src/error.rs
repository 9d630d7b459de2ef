use std::path::PathBuf;
use std::time::Duration;

/// Why a sync operation failed. Conflicts are not errors: they are outcomes
/// (`PushOutcome::RemoteNewer`, `PushOutcome::OtherBuild`) that the caller reports.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("invalid sync target `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot set up sync target {target}: {source}")]
    Config {
        target: String,
        #[source]
        source: object_store::Error,
    },

    /// The endpoint kept failing (refused, 5xx, timeouts) until the operation's time
    /// bound ran out.
    #[error(
        "{target} did not answer within {bound:?} ({attempts} attempts; last error: {last}); \
         check the endpoint and credentials, pushes wait in the backlog"
    )]
    Unreachable { target: String, bound: Duration, attempts: u32, last: String },

    /// The endpoint answered with a failure that retrying cannot fix (permission,
    /// authentication, a missing bucket, a bad request).
    #[error("{target} refused the request: {source}")]
    Remote {
        target: String,
        #[source]
        source: object_store::Error,
    },

    /// The remote copy is not a valid build document; a person must look at it, it is
    /// never overwritten blindly.
    #[error("remote copy {location} is not a valid build document: {reason}")]
    Corrupt { location: String, reason: String },

    /// Another writer kept changing the remote copy between our read and our write.
    #[error("remote copy {location} changed {rounds} times while pushing; try again")]
    Contended { location: String, rounds: u32 },

    /// `pull` by number found the build under more than one provider.
    #[error("build {number} exists under several providers ({providers}); name the provider")]
    Ambiguous { number: String, providers: String },

    #[error("sync state {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "sync state directory {path} belongs to target {expected}, not {found}; \
         use one state directory per target"
    )]
    StateForOtherTarget { path: PathBuf, expected: String, found: String },
}

impl SyncError {
    pub(crate) fn state(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SyncError::State { path: path.into(), source }
    }
}
