//! `defaults:` and the per-state entries of `states:`, resolved into [`Step`]s.
//!
//! Merging rules (documented in docs/pipeline.md):
//! - `workdir`, `timeout`: the step's value, else the default's;
//! - `env`: the default map with the step's map over it, key by key; likewise each
//!   platform's map in `platform_env`;
//! - `retry`: field by field — the step's, else the default's, else the policy the
//!   process starts from for that state ([`RetryDefaults`]: the configured one, else
//!   [`buildstate_core::RetryPolicy::default_for`]). `backoff` is replaced as a
//!   whole (its kind decides its fields); inside `transient`, `exit_codes` and
//!   `output_patterns` are each replaced as a whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use buildstate_core::{Backoff, Name, StateCode};
use serde_saphyr::Location;

use super::duration;
use super::error::Source;
use super::matrix::name;
use super::raw::{
    EnvMap, PlatformEnvMap, RawBackoff, RawDefaults, RawRetry, RawRun, RawStep, RawTransient, S,
};
use super::{PipelineError, Program, RetryDefaults, RetryLayer, Step};

/// Environment variables the runner sets itself; a file may not set them.
const RESERVED_PREFIX: &str = "BUILDSTATE_";
const MAX_ATTEMPTS: u32 = 100;

/// The keys that say what a step runs: a step has exactly one of them.
const PROGRAM_KEYS: &str = "`run`, `script`, `packer` and `ansible`";
const MAX_FACTOR: u32 = 100;

/// `exit_codes` and `output_patterns`, each replaced as a whole when given.
type TransientFields = (Option<Vec<i32>>, Option<Vec<String>>);

/// What every step inherits.
#[derive(Debug)]
pub(super) struct Defaults {
    workdir: PathBuf,
    timeout: Option<Duration>,
    env: BTreeMap<String, String>,
    platform_env: BTreeMap<Name, BTreeMap<String, String>>,
    retry: RetryLayer,
}

/// What resolving a step needs to know about the rest of the file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context<'a> {
    pub src: Source<'a>,
    /// The pipeline's directory (absolute).
    pub dir: &'a Path,
    /// The matrix's platforms, for checking `platform_env` keys.
    pub platforms: &'a [Name],
    /// The policies retries start from, under `defaults.retry`.
    pub retry_base: &'a RetryDefaults,
}

impl Context<'_> {
    pub fn defaults(&self, raw: Option<&S<RawDefaults>>) -> Result<Defaults, PipelineError> {
        let empty = RawDefaults::default();
        let raw = raw.map_or(&empty, |d| &d.value);
        Ok(Defaults {
            workdir: match &raw.workdir {
                Some(w) => self.workdir(w)?,
                None => self.dir.to_path_buf(),
            },
            timeout: raw.timeout.as_ref().map(|t| self.duration(t, "timeout")).transpose()?,
            env: self.env(raw.env.as_ref())?,
            platform_env: self.platform_env(raw.platform_env.as_ref())?,
            retry: self.retry(raw.retry.as_ref())?,
        })
    }

    pub fn step(
        &self,
        state: StateCode,
        at: Location,
        raw: &RawStep,
        defaults: &Defaults,
    ) -> Result<Step, PipelineError> {
        let program = self.program(state, at, raw)?;
        let workdir = match &raw.workdir {
            Some(w) => self.workdir(w)?,
            None => defaults.workdir.clone(),
        };
        let timeout = match &raw.timeout {
            Some(t) => Some(self.duration(t, "timeout")?),
            None => defaults.timeout,
        };
        let mut env = defaults.env.clone();
        env.extend(self.env(raw.env.as_ref())?);
        let mut platform_env = defaults.platform_env.clone();
        for (platform, vars) in self.platform_env(raw.platform_env.as_ref())? {
            platform_env.entry(platform).or_default().extend(vars);
        }
        let retry =
            self.retry(raw.retry.as_ref())?.over(defaults.retry.over(self.retry_base.policy_for(state)));
        Ok(Step { state, program, workdir, env, platform_env, timeout, retry })
    }

    fn program(&self, state: StateCode, at: Location, raw: &RawStep) -> Result<Program, PipelineError> {
        let src = self.src;
        let given: Vec<(&str, Location)> = [
            ("run", raw.run.as_ref().map(|r| r.referenced)),
            ("script", raw.script.as_ref().map(|r| r.referenced)),
            ("packer", raw.packer.as_ref().map(|r| r.referenced)),
            ("ansible", raw.ansible.as_ref().map(|r| r.referenced)),
        ]
        .into_iter()
        .filter_map(|(k, at)| at.map(|at| (k, at)))
        .collect();
        if let [(first, _), (second, at), ..] = given.as_slice() {
            return Err(src.invalid(
                *at,
                format!(
                    "state {state} has both `{first}` and `{second}`; expected exactly one of {PROGRAM_KEYS}"
                ),
            ));
        }
        if let Some(packer) = &raw.packer {
            return self.packer(packer).map(Program::Tool);
        }
        if let Some(ansible) = &raw.ansible {
            return self.ansible(ansible).map(Program::Tool);
        }
        match (&raw.run, &raw.script) {
            (None, None) => Err(src.invalid(
                at,
                format!(
                    "state {state} has none of {PROGRAM_KEYS}; expected exactly one of them \
                     (a command line, an argv list, a script path, or a Packer or Ansible run)"
                ),
            )),
            (Some(run), _) => match &run.value {
                RawRun::Line(line) if line.trim().is_empty() => Err(src.invalid(
                    run.referenced,
                    "`run` is empty; expected a command line or an argv list",
                )),
                RawRun::Line(line) => Ok(Program::Shell(line.clone())),
                RawRun::Argv(argv) => match argv.first() {
                    None => Err(src.invalid(
                        run.referenced,
                        "`run` is an empty list; expected a program and its arguments, such as [packer, build, .]",
                    )),
                    Some(first) if first.value.trim().is_empty() => Err(src.invalid(
                        first.referenced,
                        "the program name is empty; expected the program to run as the first item of `run`",
                    )),
                    Some(_) => Ok(Program::Argv(argv.iter().map(|a| a.value.clone()).collect())),
                },
            },
            (None, Some(script)) => self.script(script).map(Program::Script),
        }
    }

    /// A script must exist when the file is read: a typo should fail before any build
    /// starts, not at milestone 60 an hour in.
    fn script(&self, raw: &S<String>) -> Result<PathBuf, PipelineError> {
        let src = self.src;
        let text = raw.value.trim();
        if text.is_empty() {
            return Err(
                src.invalid(raw.referenced, "`script` is empty; expected the path of an executable file")
            );
        }
        let path = self.path(raw, text)?;
        let relative = "relative to the pipeline's directory";
        let meta = std::fs::metadata(&path).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be read ({e})")
            };
            src.invalid(
                raw.referenced,
                format!(
                    "script `{text}` {what} (looked for {}); expected an executable file {relative}",
                    path.display()
                ),
            )
        })?;
        if !meta.is_file() {
            return Err(src.invalid(
                raw.referenced,
                format!(
                    "script `{text}` is not a file (looked at {}); expected an executable file {relative}",
                    path.display()
                ),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o111 == 0 {
                return Err(src.invalid(
                    raw.referenced,
                    format!(
                        "script `{text}` is not executable; expected an executable file (chmod +x {})",
                        path.display()
                    ),
                ));
            }
        }
        Ok(path)
    }

    fn workdir(&self, raw: &S<String>) -> Result<PathBuf, PipelineError> {
        let text = raw.value.trim();
        if text.is_empty() {
            return Err(self.src.invalid(
                raw.referenced,
                "`workdir` is empty; expected a directory, relative to the pipeline's directory or absolute",
            ));
        }
        self.path(raw, text)
    }

    /// `text` against the pipeline's directory, made absolute without touching the file
    /// system (`.` components dropped, symbolic links and `..` kept).
    fn path(&self, raw: &S<String>, text: &str) -> Result<PathBuf, PipelineError> {
        std::path::absolute(self.dir.join(text))
            .map_err(|e| self.src.invalid(raw.referenced, format!("`{text}` is not a usable path: {e}")))
    }

    pub(super) fn duration(&self, raw: &S<String>, key: &str) -> Result<Duration, PipelineError> {
        duration::parse(&raw.value)
            .map_err(|message| self.src.invalid(raw.referenced, format!("{key}: {message}")))
    }

    fn env(&self, raw: Option<&S<EnvMap>>) -> Result<BTreeMap<String, String>, PipelineError> {
        let mut env = BTreeMap::new();
        for (key, value) in raw.iter().flat_map(|m| &m.value.0) {
            let name = key.value.as_str();
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(self.src.invalid(
                    key.referenced,
                    format!(
                        "`{name}` is not an environment variable name; expected letters, digits and `_`, \
                         not starting with a digit"
                    ),
                ));
            }
            if name.starts_with(RESERVED_PREFIX) {
                return Err(self.src.invalid(
                    key.referenced,
                    format!("`{name}` is set by the runner; expected a name that does not start with {RESERVED_PREFIX}"),
                ));
            }
            if value.value.contains('\0') {
                return Err(self.src.invalid(
                    value.referenced,
                    format!("the value of `{name}` contains a NUL character; expected text without NUL"),
                ));
            }
            env.insert(name.to_owned(), value.value.clone());
        }
        Ok(env)
    }

    fn platform_env(
        &self,
        raw: Option<&S<PlatformEnvMap>>,
    ) -> Result<BTreeMap<Name, BTreeMap<String, String>>, PipelineError> {
        let mut out = BTreeMap::new();
        for (key, vars) in raw.iter().flat_map(|m| &m.value.0) {
            let platform = name(self.src, key, "platform")?;
            if !self.platforms.contains(&platform) {
                let known: Vec<&str> = self.platforms.iter().map(Name::as_str).collect();
                return Err(self.src.invalid(
                    key.referenced,
                    format!(
                        "`platform_env` names `{platform}`, which is not a platform of the matrix; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
            out.insert(platform, self.env(Some(vars))?);
        }
        Ok(out)
    }

    fn retry(&self, raw: Option<&S<RawRetry>>) -> Result<RetryLayer, PipelineError> {
        let Some(raw) = raw else { return Ok(RetryLayer::default()) };
        let raw = &raw.value;
        let (exit_codes, output_patterns) = match &raw.transient {
            Some(t) => self.transient(&t.value)?,
            None => (None, None),
        };
        Ok(RetryLayer {
            max_attempts: raw
                .max_attempts
                .as_ref()
                .map(|n| {
                    self.whole(
                        n,
                        1,
                        MAX_ATTEMPTS,
                        "max_attempts",
                        "the number of attempts including the first, from 1 (no retry) to 100",
                    )
                })
                .transpose()?,
            backoff: raw.backoff.as_ref().map(|b| self.backoff(b)).transpose()?,
            exit_codes,
            output_patterns,
        })
    }

    fn backoff(&self, raw: &S<RawBackoff>) -> Result<Backoff, PipelineError> {
        let src = self.src;
        let b = &raw.value;
        let fields = [
            ("delay", &b.delay),
            ("initial", &b.initial),
            ("max", &b.max),
            ("factor", &b.factor),
            ("jitter", &b.jitter),
        ];
        let Some(kind) = &b.kind else {
            return Err(src.invalid(
                raw.referenced,
                "backoff has no `kind`; expected kind: none, fixed or exponential",
            ));
        };
        let takes: &[&str] = match kind.value.as_str() {
            "none" => &[],
            "fixed" => &["delay"],
            "exponential" => &["initial", "max", "factor", "jitter"],
            other => {
                return Err(src.invalid(
                    kind.referenced,
                    format!("unknown backoff kind `{other}`; expected none, fixed or exponential"),
                ));
            }
        };
        if let Some((key, value)) =
            fields.iter().find_map(|(k, v)| v.as_ref().filter(|_| !takes.contains(k)).map(|v| (k, v)))
        {
            let accepted = if takes.is_empty() { "no other keys".to_owned() } else { takes.join(", ") };
            return Err(src.invalid(
                value.referenced,
                format!("`{key}` does not apply to a {} backoff; it takes: kind, {accepted}", kind.value),
            ));
        }
        let required = |value: &Option<S<String>>, key: &str| match value {
            Some(v) => self.duration(v, key),
            None => Err(src.invalid(
                raw.referenced,
                format!("a {} backoff needs `{key}`; expected a duration such as 30s", kind.value),
            )),
        };
        Ok(match kind.value.as_str() {
            "fixed" => Backoff::Fixed { delay_ms: duration::millis(required(&b.delay, "delay")?) },
            "exponential" => {
                let initial = required(&b.initial, "initial")?;
                let max = required(&b.max, "max")?;
                if initial > max {
                    let at = b.initial.as_ref().map_or(raw.referenced, |v| v.referenced);
                    return Err(src.invalid(
                        at,
                        format!(
                            "`initial` ({}) is longer than `max` ({}); expected initial ≤ max",
                            text(&b.initial),
                            text(&b.max)
                        ),
                    ));
                }
                let factor = match &b.factor {
                    Some(f) => {
                        self.whole(f, 1, MAX_FACTOR, "factor", "a whole growth factor from 1 to 100")?
                    }
                    None => 2,
                };
                let jitter = match &b.jitter {
                    Some(j) => match j.value.trim() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(src.invalid(
                                j.referenced,
                                format!("jitter: `{other}` is not true or false; expected true or false"),
                            ));
                        }
                    },
                    None => false,
                };
                Backoff::Exponential {
                    initial_ms: duration::millis(initial),
                    factor,
                    max_ms: duration::millis(max),
                    jitter,
                }
            }
            _ => Backoff::None,
        })
    }

    fn transient(&self, raw: &RawTransient) -> Result<TransientFields, PipelineError> {
        let codes = match &raw.exit_codes {
            Some(list) => Some(
                list.iter()
                    .map(|c| {
                        self.whole(c, 1, 255, "exit_codes", "an exit code from 1 to 255")
                            .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let patterns = match &raw.output_patterns {
            Some(list) => {
                if let Some(empty) = list.iter().find(|p| p.value.is_empty()) {
                    return Err(self.src.invalid(
                        empty.referenced,
                        "empty output pattern; expected text to look for in the output, such as `Could not resolve host`",
                    ));
                }
                Some(list.iter().map(|p| p.value.clone()).collect())
            }
            None => None,
        };
        Ok((codes, patterns))
    }

    /// A whole number in `min..=max`; `expected` completes the message.
    fn whole(
        &self,
        raw: &S<String>,
        min: u32,
        max: u32,
        key: &str,
        expected: &str,
    ) -> Result<u32, PipelineError> {
        let text = raw.value.trim();
        let problem = match text.parse::<i64>() {
            Ok(n) if (i64::from(min)..=i64::from(max)).contains(&n) => {
                return Ok(u32::try_from(n).unwrap_or(max));
            }
            Ok(_) => "is out of range",
            Err(_) => "is not a whole number",
        };
        Err(self.src.invalid(raw.referenced, format!("{key}: `{text}` {problem}; expected {expected}")))
    }
}

fn text(raw: &Option<S<String>>) -> &str {
    raw.as_ref().map_or("", |v| v.value.trim())
}
