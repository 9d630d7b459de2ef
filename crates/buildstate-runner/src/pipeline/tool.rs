//! Steps that run a reporting tool: `packer:` runs `buildstate packer` and `ansible:`
//! runs `buildstate ansible-playbook`, so that the tool moves the build through the
//! milestones it passes (its provisioners, its plays) and says how it failed.
//!
//! A tool step covers the catalog's milestones after its own, up to the next step: a
//! build that failed at one of them is resumed by running the tool step again.

use std::collections::BTreeMap;
use std::time::Duration;

use buildstate_core::StateCode;

use super::PipelineError;
use super::raw::{RawAnsible, RawPacker, RawPackerMap, S};
use super::step::Context;
use crate::packer::{PACKER_MAP_ENV, PackerMap, SayRule};

/// A reporting tool and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// `packer build ARGS…` under `buildstate packer`.
    Packer {
        args: Vec<String>,
        map: PackerMap,
        keep_on_failure: Option<Duration>,
        cleanup: Option<String>,
        /// Record manifest files outside Packer's working directory (`--allow-outside`).
        allow_outside: bool,
    },
    /// `ansible-playbook PLAYBOOK ARGS…` under `buildstate ansible-playbook`.
    Ansible { playbook: String, args: Vec<String> },
}

impl Tool {
    /// The command line that runs it: `bin` is this buildstate binary, `build` the
    /// build's number.
    pub fn argv(&self, bin: &str, build: &str) -> Vec<String> {
        let mut argv = vec![bin.to_owned()];
        match self {
            Tool::Packer { args, keep_on_failure, cleanup, allow_outside, .. } => {
                argv.extend(["packer".to_owned(), build.to_owned()]);
                if *allow_outside {
                    argv.push("--allow-outside".to_owned());
                }
                if let Some(keep) = keep_on_failure {
                    argv.extend(["--keep-on-failure".to_owned(), format!("{}s", keep.as_secs().max(1))]);
                }
                if let Some(cleanup) = cleanup {
                    argv.extend(["--cleanup".to_owned(), cleanup.clone()]);
                }
                argv.extend(["--".to_owned(), "packer".to_owned(), "build".to_owned()]);
                argv.extend(args.iter().cloned());
            }
            Tool::Ansible { playbook, args } => {
                argv.extend(["ansible-playbook".to_owned(), build.to_owned(), "--".to_owned()]);
                argv.extend(args.iter().cloned());
                argv.push(playbook.clone());
            }
        }
        argv
    }

    /// What the tool's wrapper reads from its environment.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if let Tool::Packer { map, .. } = self {
            // A map serializes to JSON: plain data, no floats or maps with odd keys.
            if let Ok(json) = serde_json::to_string(map) {
                env.insert(PACKER_MAP_ENV.to_owned(), json);
            }
        }
        env
    }

    /// The milestones the tool's map names (Packer); Ansible's are in its plays.
    pub fn mapped(&self) -> Vec<StateCode> {
        match self {
            Tool::Packer { map, .. } => map.milestones(),
            Tool::Ansible { .. } => Vec::new(),
        }
    }

    /// `packer` or `ansible`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Tool::Packer { .. } => "packer",
            Tool::Ansible { .. } => "ansible",
        }
    }
}

impl std::fmt::Display for Tool {
    /// `packer build ARGS…` or `ansible-playbook ARGS… PLAYBOOK`, for progress and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tool::Packer { args, .. } => write!(f, "packer build {}", args.join(" ")),
            Tool::Ansible { playbook, args } if args.is_empty() => write!(f, "ansible-playbook {playbook}"),
            Tool::Ansible { playbook, args } => write!(f, "ansible-playbook {} {playbook}", args.join(" ")),
        }
    }
}

impl Context<'_> {
    pub(super) fn packer(&self, raw: &S<RawPacker>) -> Result<Tool, PipelineError> {
        let p = &raw.value;
        let Some(args) = &p.args else {
            return Err(self.src.invalid(
                raw.referenced,
                "`packer` has no `args`; expected the arguments of `packer build`, such as [-var, \"os=rhel\", rhel.pkr.hcl]",
            ));
        };
        let args = self.args(args, "packer.args", "the template, such as [rhel.pkr.hcl]")?;
        let map = match &p.map {
            Some(m) => self.packer_map(m)?,
            None => PackerMap::default(),
        };
        let keep_on_failure =
            p.keep_on_failure.as_ref().map(|k| self.duration(k, "keep_on_failure")).transpose()?;
        let cleanup = match &p.cleanup {
            Some(c) if c.value.trim().is_empty() => {
                return Err(self.src.invalid(c.referenced, "`cleanup` is empty; expected a command line"));
            }
            Some(c) => Some(c.value.clone()),
            None => None,
        };
        if let (Some(c), None) = (&p.cleanup, &p.keep_on_failure) {
            return Err(self.src.invalid(
                c.referenced,
                "`cleanup` without `keep_on_failure`; the clean-up command is for builders kept after a failure",
            ));
        }
        let allow_outside = match &p.allow_outside {
            None => false,
            Some(v) => match v.value.trim() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(self
                        .src
                        .invalid(v.referenced, format!("allow_outside: `{other}` is not true or false")));
                }
            },
        };
        Ok(Tool::Packer { args, map, keep_on_failure, cleanup, allow_outside })
    }

    pub(super) fn ansible(&self, raw: &S<RawAnsible>) -> Result<Tool, PipelineError> {
        let a = &raw.value;
        let playbook = match &a.playbook {
            Some(p) if !p.value.trim().is_empty() => p.value.clone(),
            Some(p) => {
                return Err(self.src.invalid(p.referenced, "`playbook` is empty; expected a playbook file"));
            }
            None => {
                return Err(self.src.invalid(
                    raw.referenced,
                    "`ansible` has no `playbook`; expected the playbook to run, such as site.yml",
                ));
            }
        };
        let args = match &a.args {
            Some(args) => {
                self.args(args, "ansible.args", "arguments of ansible-playbook, such as [-i, inventory]")?
            }
            None => Vec::new(),
        };
        Ok(Tool::Ansible { playbook, args })
    }

    fn args(&self, raw: &S<Vec<S<String>>>, key: &str, expected: &str) -> Result<Vec<String>, PipelineError> {
        if raw.value.is_empty() && key == "packer.args" {
            return Err(self.src.invalid(raw.referenced, format!("`{key}` is empty; expected {expected}")));
        }
        Ok(raw.value.iter().map(|a| a.value.clone()).collect())
    }

    fn packer_map(&self, raw: &S<RawPackerMap>) -> Result<PackerMap, PipelineError> {
        let mut map = PackerMap::default();
        if let Some(provisioners) = &raw.value.provisioners {
            for (index, code) in &provisioners.value.0 {
                let i: u32 = index.value.trim().parse().map_err(|_| {
                    self.src.invalid(
                        index.referenced,
                        format!(
                            "`{}` is not a provisioner index; expected 0, 1, 2 … (the provisioners' order in the template's build block)",
                            index.value
                        ),
                    )
                })?;
                let code = self.milestone(code)?;
                if map.provisioners.insert(i, code).is_some() {
                    return Err(self.src.invalid(
                        index.referenced,
                        format!("provisioner {i} is mapped twice; expected each index once"),
                    ));
                }
            }
        }
        for rule in raw.value.say.iter().flatten() {
            let pattern = match &rule.value.pattern {
                Some(p) if !p.value.trim().is_empty() => p.value.clone(),
                _ => {
                    return Err(self.src.invalid(
                        rule.referenced,
                        "a `say` rule needs a non-empty `pattern`: text of a Packer `ui say` line",
                    ));
                }
            };
            let Some(milestone) = &rule.value.milestone else {
                return Err(self.src.invalid(rule.referenced, "a `say` rule needs a `milestone`"));
            };
            map.say.push(SayRule { pattern, milestone: self.milestone(milestone)? });
        }
        if let Some(problem) = map.problem() {
            return Err(self.src.invalid(raw.referenced, format!("the packer map: {problem}")));
        }
        Ok(map)
    }

    fn milestone(&self, raw: &S<String>) -> Result<StateCode, PipelineError> {
        raw.value.trim().parse::<StateCode>().map_err(|_| {
            self.src.invalid(
                raw.referenced,
                format!("`{}` is not a state code; expected a whole number from 0 to 100", raw.value),
            )
        })
    }
}
