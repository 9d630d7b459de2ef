use serde::{Deserialize, Serialize};

use crate::{FailureInfo, MetaKey, MetaValue, StateCode};

/// A request to move a build. Commands are data: the store runs them through
/// [`apply`](crate::apply) inside its transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Begin an attempt at the current milestone. `force` abandons an open attempt
    /// (recorded as failed, type `interrupted`) instead of refusing.
    Start { state: StateCode, actor: String, log: Option<String>, force: bool },
    /// The attempt at `state` succeeded: advance to the next milestone (or deliver at 100).
    /// Without a prior `Start`, records a zero-length attempt (track-only use).
    Complete { state: StateCode, actor: String, exit_code: Option<i32>, log: Option<String> },
    /// The attempt at `state` failed: stay at `state`. `max_attempts` comes from the
    /// caller's retry policy; reaching it flags the build for a person.
    Fail { state: StateCode, actor: String, failure: FailureInfo, max_attempts: u32, log: Option<String> },
    /// Record the current milestone as not run by this pipeline, and advance.
    Skip { state: StateCode, actor: String, reason: String },
    /// Re-open a failed build at its milestone. `force` overrides exhausted retries
    /// and persistent failures — and is recorded as such.
    Retry { actor: String, reason: Option<String>, force: bool },
    /// Move back to an earlier milestone; everything above it is invalidated.
    Rewind { to: StateCode, actor: String, reason: String },
    /// Stop the build for good (until rewound).
    Cancel { actor: String, reason: String },
    /// Set (`Some`) or remove (`None`) one metadata entry. Allowed in every status.
    SetMeta { key: MetaKey, value: Option<MetaValue> },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start { .. } => "start",
            Command::Complete { .. } => "complete",
            Command::Fail { .. } => "fail",
            Command::Skip { .. } => "skip",
            Command::Retry { .. } => "retry",
            Command::Rewind { .. } => "rewind",
            Command::Cancel { .. } => "cancel",
            Command::SetMeta { .. } => "set metadata on",
        }
    }
}
