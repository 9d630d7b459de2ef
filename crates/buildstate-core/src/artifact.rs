use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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

/// Something a build produced: where it is, how big, and its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub kind: ArtifactKind,
    /// `ami-0abc…`, `s3://bucket/key`, `file:///…`, an Azure image id, …
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Hex>,
    pub created_at: Timestamp,
}
