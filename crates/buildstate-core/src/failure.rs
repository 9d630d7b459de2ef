//! Why builds fail: typed, classified failure records.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::status::word_enum;
use crate::{BuildId, StateCode};

word_enum!(
    /// Whether a failure is worth retrying automatically.
    FailureClass, "failure class", {
        /// Network blips, rate limits, flaky mirrors: retry automatically.
        Transient => "transient",
        /// A broken playbook or a failed test: a person must look.
        Persistent => "persistent",
    }
);

/// What failed: `packer`, `ansible`, `network`, `validation`, `timeout`, `interrupted`, …
///
/// The set is open — teams add their own (`vault`, `marketplace`) — but the word is a
/// checked slug so that reports group cleanly.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
// The API document's pattern: the constructor's check, for clients and fuzzers.
#[schemars(extend("pattern" = r"^[a-z][a-z0-9-]{0,31}$"))]
pub struct FailureType(String);

impl FailureType {
    /// The types buildstate itself assigns or documents.
    pub const WELL_KNOWN: &'static [&'static str] = &[
        "packer",
        "ansible",
        "network",
        "validation",
        "timeout",
        "interrupted",
        "script",
        "test",
        "infrastructure",
        "publish",
        "unknown",
    ];

    /// The runner was stopped (signal, `start --force`) while the attempt ran.
    pub fn interrupted() -> Self {
        FailureType("interrupted".to_owned())
    }

    pub fn timeout() -> Self {
        FailureType("timeout".to_owned())
    }

    pub fn unknown() -> Self {
        FailureType("unknown".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a failure type: use a lowercase word of up to 32 characters (a-z 0-9 -), such as packer, ansible, network, validation or timeout"
)]
pub struct FailureTypeError(pub String);

impl FromStr for FailureType {
    type Err = FailureTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok { Ok(FailureType(s.to_owned())) } else { Err(FailureTypeError(crate::text::shorten(s, 40))) }
    }
}

impl TryFrom<String> for FailureType {
    type Error = FailureTypeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<FailureType> for String {
    fn from(t: FailureType) -> String {
        t.0
    }
}

impl fmt::Display for FailureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a caller reports about a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailureInfo {
    #[serde(rename = "type")]
    pub failure_type: FailureType,
    pub class: FailureClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    pub message: String,
    /// Playbook, task, host, log tail, …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// A stored failure: one per failed attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailureRecord {
    pub build_id: BuildId,
    /// 1, 2, 3, … within the build.
    pub number: u32,
    pub state: StateCode,
    pub attempt: u32,
    pub at: Timestamp,
    #[serde(flatten)]
    pub info: FailureInfo,
    pub resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
}

impl FailureRecord {
    /// Marks the failure resolved (idempotent: an already resolved record keeps its notes).
    pub fn resolve(&mut self, notes: &str, at: Timestamp) -> bool {
        if self.resolved {
            return false;
        }
        self.resolved = true;
        self.resolution = Some(crate::clean_text(notes, crate::MAX_NOTE_BYTES));
        self.resolved_at = Some(at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_closed_and_types_are_checked_slugs() {
        assert_eq!("transient".parse::<FailureClass>(), Ok(FailureClass::Transient));
        assert!("sometimes".parse::<FailureClass>().is_err());
        assert!("ansible".parse::<FailureType>().is_ok());
        assert!("vault-2".parse::<FailureType>().is_ok());
        for bad in ["", "Ansible", "a b", "x'--", &"a".repeat(33)] {
            assert!(bad.parse::<FailureType>().is_err(), "{bad:?}");
        }
    }
}
