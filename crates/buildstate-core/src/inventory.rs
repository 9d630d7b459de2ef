//! The catalog of what is built: platforms, OS versions and image types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::status::word_enum;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid name: use 1-64 characters from a-z 0-9 . _ - starting with a letter or digit")]
pub struct NameError(pub String);

/// The name of a platform, OS version or image type. Names become part of build
/// numbers, object-store paths and URLs, so they are restricted to a safe alphabet.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
// The API document's pattern: the constructor's check, for clients and fuzzers.
#[schemars(extend("pattern" = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
pub struct Name(String);

impl Name {
    pub fn new(raw: &str) -> Result<Self, NameError> {
        Name::check(raw)?;
        Ok(Name(raw.to_owned()))
    }

    fn check(raw: &str) -> Result<(), NameError> {
        let ok = (1..=64).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if ok { Ok(()) } else { Err(NameError(crate::text::shorten(raw, 40))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::new(s)
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;
    /// Keeps the string it checked (reading many rows, a copy each adds up).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Name::check(&s)?;
        Ok(Name(s))
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

word_enum!(
    /// Which of the three catalog lists an item belongs to.
    CatalogKind, "catalog kind", {
        Platform => "platform",
        Os => "os",
        ImageType => "image-type",
    }
);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Platform {
    pub name: Name,
    pub display_name: String,
    /// Cloud provider (aws, azure, gcp, openstack, cloudfoundry, …).
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OsVersion {
    pub name: Name,
    pub display_name: String,
    /// rhel, sles, ubuntu, …
    pub family: String,
    pub major: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageType {
    pub name: Name,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
}

/// One entry of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CatalogItem {
    Platform(Platform),
    Os(OsVersion),
    ImageType(ImageType),
}

impl CatalogItem {
    pub fn kind(&self) -> CatalogKind {
        match self {
            CatalogItem::Platform(_) => CatalogKind::Platform,
            CatalogItem::Os(_) => CatalogKind::Os,
            CatalogItem::ImageType(_) => CatalogKind::ImageType,
        }
    }

    pub fn name(&self) -> &Name {
        match self {
            CatalogItem::Platform(p) => &p.name,
            CatalogItem::Os(o) => &o.name,
            CatalogItem::ImageType(i) => &i.name,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            CatalogItem::Platform(p) => &p.display_name,
            CatalogItem::Os(o) => &o.display_name,
            CatalogItem::ImageType(i) => &i.display_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_hostile_input() {
        assert!(Name::new("aws-commercial").is_ok());
        assert!(Name::new("sles-15.6").is_ok());
        for bad in ["", "AWS", "x y", "a'b", "a;DROP TABLE", "a\0", "é", &"a".repeat(65)] {
            assert!(Name::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kind_words_are_pinned() {
        let words: Vec<&str> = CatalogKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(words, ["platform", "os", "image-type"]);
    }
}
