//! State catalogs: the ordered milestones a build moves through.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::StateCode;

/// One milestone of a catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Milestone {
    pub code: StateCode,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub meaning: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool: String,
}

/// The milestones of a build, unique and ascending, from 0 ("initial") to 100
/// ("delivered"). Codes need not be multiples of 5: a team inserts 12 between 10 and 15
/// without renumbering anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "Vec<Milestone>", into = "Vec<Milestone>")]
pub struct StateCatalog {
    milestones: Vec<Milestone>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("a catalog must start at 0 and end at 100")]
    MissingEnds,
    #[error("catalog codes must be unique and ascending: {after} is followed by {code}")]
    NotAscending { after: StateCode, code: StateCode },
    #[error("milestone {0} has no name")]
    EmptyName(StateCode),
    /// Milestone names become parts of log file names and URLs, so they follow the
    /// rules of every other name.
    #[error(
        "milestone {code} has the name `{name}`, which is not valid: use 1-64 characters from a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit"
    )]
    BadName { code: StateCode, name: String },
    #[error(
        "milestone {code} is named `{name}` like an earlier one; milestone names are unique (they name logs)"
    )]
    DuplicateName { code: StateCode, name: String },
    #[error(
        "the {field} of milestone {code} must be at most {MAX_MILESTONE_TEXT} bytes on one line, without control characters"
    )]
    BadText { code: StateCode, field: &'static str },
}

/// Longest `meaning` or `tool` of a milestone.
pub const MAX_MILESTONE_TEXT: usize = 1024;

const DEFAULT: [(u8, &str, &str, &str); 21] = [
    (0, "initial", "pipeline triggered, build id allocated", "-"),
    (5, "kickstart", "base VM created, unattended OS install running", "Packer"),
    (10, "green-image", "bootable image, default user, SSH key auth", "Packer, kickstart"),
    (15, "base-config", "repos, base packages, timezone, locale, logging", "Ansible"),
    (20, "cloud-setup", "provider agents and CLIs (SSM/CloudWatch, Azure agent, gcloud)", "Ansible"),
    (25, "security-baseline", "firewall, SELinux/AppArmor, patches, password policy", "Ansible"),
    (30, "monitoring", "monitoring and log-shipping agents", "Ansible"),
    (35, "runtimes", "Java, Python, Node.js, .NET, DB clients", "Ansible"),
    (40, "network", "DNS, proxies, interfaces, VPN", "Ansible"),
    (45, "storage", "partitions, LVM, mount points, cloud storage", "Ansible"),
    (50, "users-auth", "users, sudo, SSH keys, LDAP/AD", "Ansible"),
    (55, "services", "web servers, databases, app servers", "Ansible"),
    (60, "app-deploy", "applications and frameworks", "Ansible"),
    (65, "config-mgmt", "environment configs, secrets, feature flags", "Ansible, Vault"),
    (70, "integration-tests", "smoke and functional tests", "Ansible, scripts"),
    (75, "performance", "kernel tuning, caching", "Ansible"),
    (80, "backup", "backup agents, snapshot schedules", "Ansible"),
    (85, "metadata", "image description, tags, changelog, inventory", "Ansible, cloud API"),
    (90, "final-validation", "security scans, compliance, benchmarks", "scripts"),
    (95, "seal", "cleanup, remove keys and logs, seal", "Packer, Ansible"),
    (100, "delivered", "published to gallery/marketplace, notified", "cloud APIs"),
];

impl StateCatalog {
    /// The 21-milestone default catalog of the specification (0, 5, …, 100).
    pub fn default_catalog() -> Self {
        let milestones = DEFAULT
            .iter()
            .map(|&(code, name, meaning, tool)| Milestone {
                code: StateCode::new(i64::from(code)).unwrap_or(StateCode::INITIAL),
                name: name.to_owned(),
                meaning: meaning.to_owned(),
                tool: tool.to_owned(),
            })
            .collect();
        StateCatalog { milestones }
    }

    /// A custom catalog; checked for unique ascending codes from 0 to 100.
    pub fn new(milestones: Vec<Milestone>) -> Result<Self, CatalogError> {
        let (Some(first), Some(last)) = (milestones.first(), milestones.last()) else {
            return Err(CatalogError::MissingEnds);
        };
        if first.code != StateCode::INITIAL || last.code != StateCode::DELIVERED {
            return Err(CatalogError::MissingEnds);
        }
        for pair in milestones.windows(2) {
            if pair[1].code <= pair[0].code {
                return Err(CatalogError::NotAscending { after: pair[0].code, code: pair[1].code });
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for m in &milestones {
            if !names.insert(m.name.as_str()) {
                return Err(CatalogError::DuplicateName {
                    code: m.code,
                    name: crate::text::shorten(&m.name, 40),
                });
            }
            if m.name.trim().is_empty() {
                return Err(CatalogError::EmptyName(m.code));
            }
            if crate::Name::new(&m.name).is_err() {
                let name = crate::text::shorten(&m.name, 40);
                return Err(CatalogError::BadName { code: m.code, name });
            }
            for (field, text) in [("meaning", &m.meaning), ("tool", &m.tool)] {
                if text.len() > MAX_MILESTONE_TEXT || text.chars().any(char::is_control) {
                    return Err(CatalogError::BadText { code: m.code, field });
                }
            }
        }
        Ok(StateCatalog { milestones })
    }

    /// The default catalog with extra milestones inserted (for example 12 and 97).
    pub fn with_inserted(mut self, extra: Vec<Milestone>) -> Result<Self, CatalogError> {
        self.milestones.extend(extra);
        self.milestones.sort_by_key(|m| m.code);
        StateCatalog::new(self.milestones)
    }

    pub fn is_default(&self) -> bool {
        *self == StateCatalog::default_catalog()
    }

    pub fn milestones(&self) -> &[Milestone] {
        &self.milestones
    }

    pub fn codes(&self) -> impl Iterator<Item = StateCode> + '_ {
        self.milestones.iter().map(|m| m.code)
    }

    pub fn contains(&self, code: StateCode) -> bool {
        self.get(code).is_some()
    }

    pub fn get(&self, code: StateCode) -> Option<&Milestone> {
        self.milestones.binary_search_by_key(&code, |m| m.code).ok().map(|i| &self.milestones[i])
    }

    pub fn name_of(&self, code: StateCode) -> &str {
        self.get(code).map_or("?", |m| m.name.as_str())
    }

    /// The milestone after `code`, or `None` at 100.
    pub fn next(&self, code: StateCode) -> Option<StateCode> {
        self.milestones.iter().map(|m| m.code).find(|c| *c > code)
    }

    /// Codes strictly between `from` and `to`: what a rewind from `from` to `to`
    /// invalidates, besides `from` itself.
    pub fn between(&self, low: StateCode, high: StateCode) -> Vec<StateCode> {
        self.codes().filter(|c| *c > low && *c <= high).collect()
    }

    /// "0, 5, 10, … 100" — for error messages.
    pub fn code_list(&self) -> String {
        let codes: Vec<String> = self.codes().map(|c| c.to_string()).collect();
        codes.join(", ")
    }
}

impl Default for StateCatalog {
    fn default() -> Self {
        StateCatalog::default_catalog()
    }
}

impl TryFrom<Vec<Milestone>> for StateCatalog {
    type Error = CatalogError;
    fn try_from(v: Vec<Milestone>) -> Result<Self, Self::Error> {
        StateCatalog::new(v)
    }
}

impl From<StateCatalog> for Vec<Milestone> {
    fn from(c: StateCatalog) -> Self {
        c.milestones
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("valid code")
    }

    #[test]
    fn milestone_names_cannot_leave_a_directory() {
        for bad in ["x/../../../tmp/OUT", "..", "a b", "Kickstart", "-x", "a\\b", &"x".repeat(65)] {
            let c =
                StateCatalog::new(vec![milestone(0, "initial"), milestone(50, bad), milestone(100, "done")]);
            assert!(matches!(c, Err(CatalogError::BadName { .. })), "{bad:?}: {c:?}");
        }
        let json = r#"[{"code":0,"name":"a"},{"code":50,"name":"x/../../tmp/OUT"},{"code":100,"name":"z"}]"#;
        assert!(serde_json::from_str::<StateCatalog>(json).is_err(), "documents are checked on the way in");
        let mut m = milestone(50, "ok");
        m.tool = "ansible\u{1b}[31m".into();
        let c = StateCatalog::new(vec![milestone(0, "a"), m, milestone(100, "z")]);
        assert!(matches!(c, Err(CatalogError::BadText { field: "tool", .. })), "{c:?}");
        let c = StateCatalog::new(vec![
            milestone(0, "a"),
            milestone(25, "x"),
            milestone(30, "x"),
            milestone(100, "z"),
        ]);
        assert!(matches!(c, Err(CatalogError::DuplicateName { .. })), "{c:?}");
    }

    fn milestone(n: i64, name: &str) -> Milestone {
        Milestone { code: code(n), name: name.into(), meaning: String::new(), tool: String::new() }
    }

    #[test]
    fn default_catalog_is_the_spec() {
        let c = StateCatalog::default_catalog();
        let codes: Vec<u8> = c.codes().map(StateCode::get).collect();
        assert_eq!(codes, (0..=100).step_by(5).collect::<Vec<u8>>());
        assert_eq!(c.name_of(code(45)), "storage");
        assert_eq!(c.name_of(code(100)), "delivered");
        assert_eq!(c.next(code(95)), Some(code(100)));
        assert_eq!(c.next(code(100)), None);
        assert!(!c.contains(code(7)));
        assert!(StateCatalog::new(c.milestones().to_vec()).is_ok());
    }

    #[test]
    fn inserted_codes_slot_in_without_renumbering() {
        let c = StateCatalog::default_catalog()
            .with_inserted(vec![milestone(12, "hardening"), milestone(97, "sign")])
            .expect("valid custom catalog");
        assert_eq!(c.next(code(10)), Some(code(12)));
        assert_eq!(c.next(code(12)), Some(code(15)));
        assert_eq!(c.next(code(95)), Some(code(97)));
        assert!(!c.is_default());
    }

    #[test]
    fn rejects_broken_catalogs() {
        assert_eq!(StateCatalog::new(vec![]), Err(CatalogError::MissingEnds));
        assert_eq!(
            StateCatalog::new(vec![milestone(5, "a"), milestone(100, "b")]),
            Err(CatalogError::MissingEnds)
        );
        assert!(matches!(
            StateCatalog::new(vec![
                milestone(0, "a"),
                milestone(50, "b"),
                milestone(50, "c"),
                milestone(100, "d")
            ]),
            Err(CatalogError::NotAscending { .. })
        ));
        assert!(
            serde_json::from_str::<StateCatalog>(
                r#"[{"code":0,"name":"a"},{"code":7,"name":""},{"code":100,"name":"z"}]"#
            )
            .is_err()
        );
    }
}
