use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StateCode;
use crate::status::word_enum;

word_enum!(
    /// What an artifact is.
    ArtifactKind, "artifact kind", {
        /// A cloud image id: AMI, Azure image, GCP image, OpenStack image.
        Image => "image",
        /// A disk file: qcow2, VHD, VMDK, raw tarball.
        Disk => "disk",
        /// A Packer manifest or other build description.
        Manifest => "manifest",
        /// A log, report or scan result.
        Report => "report",
        Other => "other",
    }
);

/// A lowercase hex SHA-256 digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
// The API document's pattern: the constructor's check, for clients and fuzzers.
#[schemars(extend("pattern" = r"^[0-9a-fA-F]{64}$"))]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn new(raw: &str) -> Result<Self, String> {
        let lower = raw.to_ascii_lowercase();
        if lower.len() == 64 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha256Hex(lower))
        } else {
            Err(format!(
                "`{}` is not a SHA-256 digest: expected 64 hex characters",
                crate::text::shorten(raw, 70)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Sha256Hex::new(&s)
    }
}

impl From<Sha256Hex> for String {
    fn from(h: Sha256Hex) -> String {
        h.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something a build produced: where it is, how big, and its digest, the milestone that
/// produced it, and whether a rewind has since invalidated it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Artifact {
    pub name: String,
    pub kind: ArtifactKind,
    /// `ami-0abc…`, `s3://bucket/key`, `file:///…`, an Azure image id, …
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The cloud the artifact is in: `aws`, `azure`, `gcp`, `openstack`, … (the words
    /// Packer manifest ingestion derives from the builder type), or `None` for an
    /// artifact in no cloud (a local disk file, a report) and for those recorded before
    /// buildstate kept it. Free text, bounded like the region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Hex>,
    pub created_at: Timestamp,
    /// The build's milestone when the artifact was recorded (the store sets it from the
    /// build as stored). `None` for artifacts recorded before buildstate kept it: those
    /// are never invalidated by a rewind, since nobody knows which milestone made them.
    #[serde(default)]
    pub milestone: Option<StateCode>,
    /// When a rewind invalidated it: the milestone that produced it runs again, so it is
    /// no longer one of the build's current artifacts (it stays on record, marked).
    #[serde(default)]
    pub invalidated_at: Option<Timestamp>,
}

impl Artifact {
    /// Not invalidated by a rewind: one of the build's current artifacts.
    pub fn is_current(&self) -> bool {
        self.invalidated_at.is_none()
    }

    /// Whether a rewind to `to` invalidates this artifact: it is current and was recorded
    /// at `to` or a later milestone, which the rewound build runs again.
    pub fn invalidated_by_rewind(&self, to: StateCode) -> bool {
        self.is_current() && self.milestone.is_some_and(|m| m >= to)
    }
}

/// The artifacts among `artifacts` that a rewind to `to` at `at` invalidates, marked
/// invalidated at `at` (the rewind's own time), in their order. The store writes them in
/// the rewind's transaction.
pub fn invalidated_by_rewind(artifacts: &[Artifact], to: StateCode, at: Timestamp) -> Vec<Artifact> {
    artifacts
        .iter()
        .filter(|a| a.invalidated_by_rewind(to))
        .map(|a| Artifact { invalidated_at: Some(at), ..a.clone() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(milestone: Option<i64>) -> Artifact {
        Artifact {
            name: "ami".into(),
            kind: ArtifactKind::Image,
            uri: "ami-1".into(),
            region: None,
            cloud: None,
            size_bytes: None,
            sha256: None,
            created_at: Timestamp::UNIX_EPOCH,
            milestone: milestone.map(|m| StateCode::new(m).expect("code")),
            invalidated_at: None,
        }
    }

    #[test]
    fn a_rewind_invalidates_the_artifacts_of_its_target_and_later() {
        let code = |n| StateCode::new(n).expect("code");
        let when = Timestamp::from_second(1_770_000_000).expect("time");
        let artifacts = [at(Some(10)), at(Some(20)), at(Some(45)), at(None)];
        let marked = invalidated_by_rewind(&artifacts, code(20), when);
        let milestones: Vec<Option<u8>> = marked.iter().map(|a| a.milestone.map(StateCode::get)).collect();
        assert_eq!(
            milestones,
            vec![Some(20), Some(45)],
            "20 runs again, and so does 45; 10 and unknown stay"
        );
        assert!(marked.iter().all(|a| a.invalidated_at == Some(when) && !a.is_current()));
        // An artifact invalidated once keeps its time: a later rewind does not move it.
        assert!(invalidated_by_rewind(&marked, code(0), when).is_empty());
    }

    #[test]
    fn documents_without_the_fields_read() {
        let old = r#"{"name":"ami","kind":"image","uri":"ami-1","created_at":"2026-02-12T10:00:00Z"}"#;
        let a: Artifact = serde_json::from_str(old).expect("an artifact written before milestones");
        assert_eq!((a.milestone, a.invalidated_at, a.cloud), (None, None, None));
        let text = serde_json::to_value(at(Some(45))).expect("encode");
        assert_eq!((text["milestone"].as_u64(), text["invalidated_at"].is_null()), (Some(45), true));
        assert!(text.get("cloud").is_none(), "no cloud, no key: {text}");
        let in_aws = Artifact { cloud: Some("aws".into()), ..at(None) };
        let back: Artifact =
            serde_json::from_value(serde_json::to_value(&in_aws).expect("encode")).expect("decode");
        assert_eq!(back.cloud.as_deref(), Some("aws"));
    }
}
