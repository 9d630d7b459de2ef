use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a build id (expected a UUID)")]
    BadId(String),
    #[error(
        "`{0}` is not a valid build number: use 1-{max} characters from a-z 0-9 . _ - starting with a letter or digit",
        max = MAX_BUILD_NUMBER_BYTES
    )]
    BadNumber(String),
}

/// The longest build number, in bytes (= characters: the alphabet is ASCII): exactly the
/// longest number buildstate generates, `<os>-<image>-<platform>-<yyyymmdd>-<sequence>`
/// of three 64-character names and a `u32` sequence (3 × 64 + 4 + 8 + 10), so that every
/// build the store can create gets its number, and no longer. A number becomes a file
/// name in several places, each held to the 255 bytes a name may have on common file
/// systems: the JSON-file store's `<number>.json` (at most 250 there), an attempt log's
/// directory, a sync backlog's `<provider>@<number>.json` (shortened with a digest when
/// a long provider makes it too long).
pub const MAX_BUILD_NUMBER_BYTES: usize = 214;

/// The immutable identity of a build (a UUIDv7, so ids sort by creation time).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct BuildId(Uuid);

impl BuildId {
    /// A new id for a build created at `unix_ms` (callers pass the time: the core has no clock).
    pub fn generate(unix_ms: u64, random: u128) -> Self {
        let mut bytes = random.to_be_bytes();
        bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
        // Version 7 and RFC 4122 variant bits.
        bytes[6] = (bytes[6] & 0x0f) | 0x70;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        BuildId(Uuid::from_bytes(bytes))
    }

    pub fn from_uuid(u: Uuid) -> Self {
        BuildId(u)
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for BuildId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(BuildId).map_err(|_| IdError::BadId(crate::text::shorten(s, 40)))
    }
}

/// The human-readable, unique name of a build, such as
/// `rhel-8.8-base-aws-commercial-20260212-001`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
// The API document's pattern: the constructor's check, for clients and fuzzers.
#[schemars(extend("pattern" = r"^[a-z0-9][a-z0-9._-]{0,213}$"))]
pub struct BuildNumber(String);

impl BuildNumber {
    pub fn new(raw: &str) -> Result<Self, IdError> {
        BuildNumber::check(raw)?;
        Ok(BuildNumber(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), IdError> {
        let ok = (1..=MAX_BUILD_NUMBER_BYTES).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if ok { Ok(()) } else { Err(IdError::BadNumber(crate::text::shorten(raw, 60))) }
    }

    /// `<os>-<image>-<platform>-<yyyymmdd>-` — the stem that a per-day sequence completes.
    pub fn stem(os: &str, image: &str, platform: &str, yyyymmdd: &str) -> String {
        format!("{os}-{image}-{platform}-{yyyymmdd}-")
    }

    /// The stem plus a zero-padded sequence number (three digits, more when needed).
    pub fn with_sequence(stem: &str, seq: u32) -> Result<Self, IdError> {
        BuildNumber::new(&format!("{stem}{seq:03}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BuildNumber {
    type Error = IdError;
    /// Keeps the string it checked.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BuildNumber::check(&s)?;
        Ok(BuildNumber(s))
    }
}

impl From<BuildNumber> for String {
    fn from(n: BuildNumber) -> String {
        n.0
    }
}

impl fmt::Display for BuildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_and_time_ordered() {
        let a = BuildId::generate(1_000, u128::MAX);
        let b = BuildId::generate(2_000, 0);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b);
        assert_eq!(a.to_string().parse::<BuildId>(), Ok(a));
    }

    #[test]
    fn numbers_are_checked() {
        let stem = BuildNumber::stem("rhel-8.8", "base", "aws-commercial", "20260212");
        assert_eq!(
            BuildNumber::with_sequence(&stem, 1).map(|n| n.0),
            Ok("rhel-8.8-base-aws-commercial-20260212-001".to_owned())
        );
        assert_eq!(BuildNumber::with_sequence(&stem, 1234).map(|n| n.0.ends_with("-1234")), Ok(true));
        for bad in ["", "Rhel", "a b", "x';drop", "-x", "a\0b"] {
            assert!(BuildNumber::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_longest_generated_number_is_the_limit() {
        let stem = BuildNumber::stem(&"o".repeat(64), &"i".repeat(64), &"p".repeat(64), "20260212");
        let longest = BuildNumber::with_sequence(&stem, u32::MAX).expect("the longest names get a number");
        assert_eq!(longest.as_str().len(), MAX_BUILD_NUMBER_BYTES);
    }

    #[test]
    fn numbers_are_at_most_the_limit() {
        let at = "a".repeat(MAX_BUILD_NUMBER_BYTES);
        assert_eq!(BuildNumber::new(&at).map(|n| n.0.len()), Ok(MAX_BUILD_NUMBER_BYTES));
        let over = "a".repeat(MAX_BUILD_NUMBER_BYTES + 1);
        let err = BuildNumber::new(&over).expect_err("one byte over");
        assert!(err.to_string().contains(&format!("1-{MAX_BUILD_NUMBER_BYTES} characters")), "{err}");
    }
}
