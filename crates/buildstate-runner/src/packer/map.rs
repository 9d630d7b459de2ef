//! The map from a Packer run's progress to milestones: provisioner indexes (in the
//! order of the template's `build` block, from 0) and patterns of `ui say` lines. It is
//! written in a pipeline step's `packer.map`, or in a file given to `buildstate packer
//! --map` (YAML or JSON), with the same keys:
//!
//! ```yaml
//! provisioners: {0: 10, 1: 15}
//! say:
//!   - {pattern: "Creating AMI", milestone: 20}
//! ```

use std::collections::BTreeMap;

use buildstate_core::StateCode;
use serde::{Deserialize, Serialize};

/// The variable a pipeline's `packer:` step passes its map in (as JSON) to
/// `buildstate packer`.
pub const PACKER_MAP_ENV: &str = "BUILDSTATE_PACKER_MAP";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackerMap {
    /// Provisioner index → the milestone it starts.
    #[serde(default)]
    pub provisioners: BTreeMap<u32, StateCode>,
    /// A `ui say` line containing `pattern` starts `milestone`.
    #[serde(default)]
    pub say: Vec<SayRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SayRule {
    pub pattern: String,
    pub milestone: StateCode,
}

impl PackerMap {
    /// Every milestone the map can move a build to, ascending and without repeats.
    pub fn milestones(&self) -> Vec<StateCode> {
        let mut codes: Vec<StateCode> =
            self.provisioners.values().copied().chain(self.say.iter().map(|r| r.milestone)).collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    /// What is wrong with the map on its own: an empty pattern would match every line,
    /// and provisioners run in index order, so their milestones must not go backwards
    /// (`{0: 15, 1: 10}` would never record 10: a build does not move back). The pipeline
    /// parser checks a `packer.map` with this too.
    pub fn problem(&self) -> Option<String> {
        if let Some(i) = self.say.iter().position(|r| r.pattern.trim().is_empty()) {
            return Some(format!("say rule {i} has an empty pattern, which would match every line"));
        }
        let mut previous: Option<(u32, StateCode)> = None;
        for (index, code) in &self.provisioners {
            if let Some((before, earlier)) = previous
                && *code < earlier
            {
                return Some(format!(
                    "provisioner {index} maps to milestone {code}, before provisioner {before}'s {earlier}: \
                     provisioners run in order, so their milestones must ascend"
                ));
            }
            previous = Some((*index, *code));
        }
        None
    }
}

impl PackerMap {
    /// Reads a map written in YAML or JSON (JSON is YAML too), checked on its own
    /// ([`PackerMap::problem`]); the message says what is wrong.
    pub fn parse(text: &str) -> Result<PackerMap, String> {
        let map: PackerMap = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            serde_saphyr::from_str(text).map_err(|e| e.to_string())?
        };
        match map.problem() {
            Some(problem) => Err(problem),
            None => Ok(map),
        }
    }

    /// The milestones of the map that `contains` (the build's catalog) does not have.
    pub fn outside(&self, contains: impl Fn(StateCode) -> bool) -> Vec<StateCode> {
        self.milestones().into_iter().filter(|c| !contains(*c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_read_alike() {
        let yaml =
            PackerMap::parse("provisioners: {0: 10, 1: 15}\nsay:\n  - {pattern: AMI, milestone: 20}\n")
                .expect("yaml");
        let json = PackerMap::parse(
            r#"{"provisioners": {"0": 10, "1": 15}, "say": [{"pattern": "AMI", "milestone": 20}]}"#,
        )
        .expect("json");
        assert_eq!(yaml, json);
        assert_eq!(yaml.milestones().len(), 3);
        assert!(PackerMap::parse("provisioners: [1, 2]").is_err());
        assert!(PackerMap::parse("unknown: 1").is_err());
        assert!(PackerMap::parse("say: [{pattern: ' ', milestone: 5}]").is_err());
        let backwards = PackerMap::parse("provisioners: {0: 15, 1: 10}").expect_err("backwards");
        assert!(backwards.contains("provisioner 1 maps to milestone 10"), "{backwards}");
        assert!(PackerMap::parse("provisioners: {0: 10, 2: 10, 5: 20}").is_ok());
        assert_eq!(yaml.outside(|c| c.get() != 15).iter().map(|c| c.get()).collect::<Vec<_>>(), vec![15]);
    }
}
