use buildstate_core::{BuildId, BuildNumber};
use jiff::Timestamp;

use crate::SyncError;

/// What a push did. Only `Pushed` and `AlreadyThere` mean the remote copy is ours now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Written: created (`created`) or replaced a copy we had seen, unchanged since.
    Pushed { created: bool },
    /// The remote copy already was exactly this document (e.g. our earlier write landed
    /// but its answer was lost).
    AlreadyThere,
    /// Not written: the remote copy is at the same or a later version of this build —
    /// another worker moved it on. It is never overwritten; the caller reports it (and a
    /// person, or `pull`, decides).
    RemoteNewer { local_version: u64, remote_version: u64 },
    /// Not written: another machine continued the build from the same copy, so each
    /// side holds history the other lacks. Never resolved by overwriting: a person
    /// decides which line to keep (`sync pull` takes the remote one).
    Diverged { local_version: u64, remote_version: u64 },
    /// Not written: the object at this build's path holds a different build (same number
    /// and provider, another id).
    OtherBuild { remote_build_id: BuildId },
    /// Not written now: the endpoint kept failing within the time bound. The document
    /// waits in the backlog for `flush_backlog`.
    Backlogged { error: String },
}

/// One build copy found under the target's prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEntry {
    pub number: BuildNumber,
    /// The provider path segment (`unknown` when the document had none).
    pub provider: String,
    /// Full object path, `prefix/provider/number/state.json`.
    pub location: String,
    pub size: u64,
    pub last_modified: Timestamp,
    pub e_tag: Option<String>,
    /// The document version, when known without downloading it: the object is the one we
    /// last wrote or read.
    pub version: Option<u64>,
}

/// How a local build's copy stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncState {
    InSync,
    /// The local build moved on since the copy was written: push.
    LocalNewer,
    /// Another worker moved the copy on: pull (or look).
    RemoteNewer,
    /// The copy and the local build went separate ways from a common state.
    Diverged,
    MissingRemotely,
    /// A push of this build failed and waits in the backlog.
    Backlog,
    /// The copy could not be read (endpoint down, corrupt copy, …).
    Unknown {
        error: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStatus {
    pub number: BuildNumber,
    pub provider: String,
    pub local_version: u64,
    pub remote_version: Option<u64>,
    pub state: SyncState,
}

/// What `flush_backlog` did, entry by entry.
#[derive(Debug, Default)]
pub struct FlushReport {
    pub outcomes: Vec<(BuildNumber, Result<PushOutcome, SyncError>)>,
    /// Entries not tried because the endpoint was still failing.
    pub remaining: usize,
}

impl FlushReport {
    /// True when the backlog is empty now.
    pub fn is_drained(&self) -> bool {
        self.remaining == 0
            && self
                .outcomes
                .iter()
                .all(|(_, o)| matches!(o, Ok(o) if !matches!(o, PushOutcome::Backlogged { .. })))
    }
}
