//! Pipeline files: which milestones a build runs, what each runs, with which
//! environment, timeout and retry policy, for which matrix of platform × OS × image.
//!
//! The format is documented in `docs/pipeline.md`; a test parses the example there.
//! Reading is two steps: [`raw`] is the serde shape of the YAML (spanned, so every
//! error has a line and column), [`resolve`] validates it into a [`Pipeline`] whose
//! paths are absolute and whose retry policies are complete — the runner does no
//! further checking or merging.

mod duration;
mod error;
mod filter;
mod matrix;
mod raw;
mod resolve;
mod retry;
mod step;
mod tool;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use buildstate_core::{Name, RetryPolicy, StateCatalog, StateCode};

pub use error::{PipelineError, PipelineErrorKind};
pub use filter::MatrixFilter;
pub use retry::{RetryDefaults, RetryLayer, RetryRule};
pub use tool::Tool;

/// A validated pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// A slug; recorded on each build as metadata `pipeline=<name>`.
    pub name: Name,
    /// The file it was read from (absolute).
    pub file: PathBuf,
    /// The file's directory: relative `script` paths and `workdir`s resolve here.
    pub dir: PathBuf,
    /// The default catalog, or the custom one the file declares.
    pub catalog: StateCatalog,
    /// Expanded, with `exclude` and `include` applied and duplicates removed; in file
    /// order (platform, then OS, then image, then the `include` entries).
    pub matrix: Vec<MatrixCell>,
    /// Only the states the file lists; every key is in `catalog`. Catalog milestones
    /// without a step are recorded as skipped by the runner.
    pub steps: BTreeMap<StateCode, Step>,
}

/// One build of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatrixCell {
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
}

/// What one milestone runs, fully resolved (defaults merged in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub state: StateCode,
    pub program: Program,
    /// Absolute; it need not exist when the file is read (an earlier step may create it).
    pub workdir: PathBuf,
    /// `defaults.env` with the step's `env` over it.
    pub env: BTreeMap<String, String>,
    /// Per-platform overrides: `defaults.platform_env` with the step's over it, key by
    /// key. Applied over `env` by [`Step::env_for`].
    pub platform_env: BTreeMap<Name, BTreeMap<String, String>>,
    /// `None`: no limit.
    pub timeout: Option<Duration>,
    /// Complete: the step's `retry` over `defaults.retry` over the process's
    /// [`RetryDefaults`] for the state (by default [`RetryPolicy::default_for`]), field
    /// by field.
    pub retry: RetryPolicy,
}

/// How a step is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A command line, run with `sh -c`.
    Shell(String),
    /// A program and its arguments, run directly (no shell).
    Argv(Vec<String>),
    /// An executable file (absolute path), run directly with no arguments.
    Script(PathBuf),
    /// Packer or Ansible under buildstate's wrapper, which records the milestones the
    /// tool passes ([`Tool`]).
    Tool(Tool),
}

impl Program {
    /// What the executor runs: a tool step becomes its wrapper's command line, run with
    /// this buildstate binary `bin` for build `build`; other programs are as written.
    pub fn expanded(&self, bin: &str, build: &str) -> Program {
        match self {
            Program::Tool(tool) => Program::Argv(tool.argv(bin, build)),
            other => other.clone(),
        }
    }
}

impl Step {
    /// The step's environment on `platform`: `env` with that platform's overrides.
    /// (The runner adds its `BUILDSTATE_*` variables on top.)
    pub fn env_for(&self, platform: &Name) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        if let Some(overrides) = self.platform_env.get(platform) {
            env.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        env
    }
}

impl Pipeline {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PipelineError::read(path, format!("cannot read the pipeline file: {e}")))?;
        Pipeline::parse(&text, path)
    }

    /// Validates pipeline text. `file` names it in messages and gives `dir`, against
    /// which relative paths resolve (and `script` files must exist). Retry policies
    /// start from [`RetryDefaults::installed`].
    pub fn parse(text: &str, file: &Path) -> Result<Pipeline, PipelineError> {
        Pipeline::parse_with(text, file, RetryDefaults::installed())
    }

    /// [`Pipeline::parse`] with retry policies starting from `retry_base`.
    pub fn parse_with(
        text: &str,
        file: &Path,
        retry_base: &RetryDefaults,
    ) -> Result<Pipeline, PipelineError> {
        resolve::resolve(text, file, retry_base)
    }

    /// Validates a state catalog written on its own, in the syntax of a pipeline file's
    /// `catalog:` value — `default`, `{insert: [milestones]}` or a full list of
    /// milestones — as YAML or JSON (which YAML reads too). `buildstate build create
    /// --catalog FILE` reads it, so a catalog is declared once whichever way builds are made.
    pub fn parse_catalog(text: &str, file: &Path) -> Result<StateCatalog, PipelineError> {
        resolve::catalog_only(text, file)
    }

    /// The step that runs milestone `state`: its own, or the tool step before it that
    /// covers it (a Packer or Ansible step moves the build through the milestones after
    /// its own, up to the next step). `None`: nothing runs it, it is skipped.
    pub fn step_for(&self, state: StateCode) -> Option<&Step> {
        if let Some(step) = self.steps.get(&state) {
            return Some(step);
        }
        let (_, before) = self.steps.range(..state).next_back()?;
        matches!(before.program, Program::Tool(_)).then_some(before)
    }

    /// The cells `filter` selects, in matrix order.
    pub fn cells(&self, filter: &MatrixFilter) -> Vec<&MatrixCell> {
        self.matrix.iter().filter(|cell| filter.matches(cell)).collect()
    }
}

impl fmt::Display for MatrixCell {
    /// `platform/os/image`, for progress lines and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.platform, self.os, self.image_type)
    }
}

impl fmt::Display for Program {
    /// A one-line rendering for progress lines and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Program::Shell(line) => f.write_str(line),
            Program::Argv(argv) => f.write_str(&argv.join(" ")),
            Program::Script(path) => write!(f, "{}", path.display()),
            Program::Tool(tool) => write!(f, "{tool}"),
        }
    }
}
