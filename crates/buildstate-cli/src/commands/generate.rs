//! `generate gitlab|github|concourse PIPELINE`: a CI pipeline for a pipeline file's
//! matrix, so that the CI engine a team already runs distributes the builds over its
//! runners while buildstate decides what each job still has to do. One job per matrix
//! build runs `buildstate run PIPELINE --only CELL` (a re-run job resumes its build
//! where it failed); `--per-milestone` gives each milestone a job (GitLab) or a step
//! (GitHub, Concourse) of its own, each `run … --through CODE`.
//!
//! Nothing secret is ever written: the store is a CI variable the team sets as a secret,
//! and a `--store` or `--server` URL that carries a password is refused. The files are
//! YAML written as text (with comments); every value that comes from the pipeline file
//! is quoted as a JSON string, which YAML reads as the same string.

use std::path::PathBuf;

use buildstate_core::StateCode;
use buildstate_runner::pipeline::{MatrixCell, Pipeline};

use super::generate_engines;
use crate::exit::{CliError, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Gitlab,
    Github,
    Concourse,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// gitlab (.gitlab-ci.yml), github (a workflow) or concourse (a pipeline)
    engine: Engine,
    /// The pipeline file, as the CI jobs reach it from the repository's root
    pipeline: PathBuf,
    /// The shared store the jobs use (PostgreSQL, no password in it: the password goes
    /// in a secret, e.g. PGPASSWORD) [default: the CI variable BUILDSTATE_DB]
    #[arg(long, value_name = "URL", conflicts_with = "server")]
    store: Option<String>,
    /// A `buildstate serve` the jobs go through; its token comes from the CI secret
    /// BUILDSTATE_TOKEN
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// One CI job (GitLab) or step (GitHub, Concourse) per milestone, each visible in the CI UI
    #[arg(long)]
    per_milestone: bool,
    /// How a job calls buildstate (a path, or a wrapper)
    #[arg(long, value_name = "COMMAND", default_value = "buildstate")]
    command: String,
    /// Write here instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Where the jobs find the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRef {
    /// The CI's secret variable `BUILDSTATE_DB`.
    Variable,
    /// A store URL without secrets, written into the file.
    Db(String),
    /// A server URL; the token is the CI's secret `BUILDSTATE_TOKEN`.
    Server(String),
}

/// What every engine's file is made from.
pub struct Plan {
    pub pipeline: Pipeline,
    /// The pipeline file as given (relative to the repository root).
    pub path: String,
    pub store: StoreRef,
    pub per_milestone: bool,
    pub command: String,
    /// The command line that wrote the file, for its header.
    pub invocation: String,
    /// The GitLab job's and the GitHub workflow's name [the pipeline's name]: files of
    /// several pipelines of one name (`buildstate new`, one per cloud) need their own.
    pub title: String,
}

/// One milestone's job or step.
pub struct Milestone {
    pub code: StateCode,
    pub name: String,
    /// `--through CODE`, except for the last step, which runs the build to delivery.
    pub through: Option<StateCode>,
}

impl Plan {
    pub fn cells(&self) -> &[MatrixCell] {
        &self.pipeline.matrix
    }

    /// The milestones that have a step, in order.
    pub fn milestones(&self) -> Vec<Milestone> {
        let codes: Vec<StateCode> = self.pipeline.steps.keys().copied().collect();
        codes
            .iter()
            .enumerate()
            .map(|(i, &code)| Milestone {
                code,
                name: self.pipeline.catalog.name_of(code).to_owned(),
                through: (i + 1 < codes.len()).then_some(code),
            })
            .collect()
    }

    /// The shell line a job runs: `buildstate run PIPELINE --only CELL [--through CODE]`,
    /// the cell from the job's environment (`PLATFORM`, `OS`, `IMAGE`).
    pub fn run_line(&self, through: Option<StateCode>) -> String {
        let through = through.map(|c| format!(" --through {c}")).unwrap_or_default();
        format!(
            "{} run {} --only \"platform=$PLATFORM,os=$OS,image=$IMAGE\"{through}",
            self.command,
            super::kept::quote(&self.path)
        )
    }
}

/// A string as YAML reads it back unchanged (a JSON string is a YAML double-quoted one).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// GitHub Actions runs at most 256 jobs of one matrix; GitLab's `parallel: matrix` at
/// most 200. A file past them would be refused by the engine, not by us.
const GITHUB_MATRIX_MAX: usize = 256;
const GITLAB_MATRIX_MAX: usize = 200;

pub fn run(a: &Args) -> Result<Exit, CliError> {
    let pipeline = crate::input::pipeline(&a.pipeline)?;
    if pipeline.steps.is_empty() {
        return Err(CliError::usage(format!(
            "pipeline {} has no steps: there is nothing for a CI job to run",
            pipeline.name
        )));
    }
    if let Some(out) = &a.output
        && std::fs::canonicalize(out).ok().is_some_and(|o| Some(o) == std::fs::canonicalize(&a.pipeline).ok())
    {
        return Err(CliError::usage(format!("-o {} is the pipeline file itself", out.display())).with_hint(
            "write the CI file elsewhere: .gitlab-ci.yml, .github/workflows/NAME.yml, ci/concourse.yml",
        ));
    }
    if a.command.trim().is_empty() {
        return Err(CliError::usage(
            "--command is empty: give how a job calls buildstate (a path, or a wrapper)",
        ));
    }
    let cells = pipeline.matrix.len();
    let limit = match a.engine {
        Engine::Github => Some(("GitHub Actions", GITHUB_MATRIX_MAX)),
        Engine::Gitlab if !a.per_milestone => Some(("GitLab's parallel: matrix", GITLAB_MATRIX_MAX)),
        _ => None,
    };
    if let Some((engine, max)) = limit.filter(|(_, max)| cells > *max) {
        return Err(CliError::usage(format!(
            "pipeline {} has {cells} builds; {engine} runs at most {max} jobs of one matrix",
            pipeline.name
        ))
        .with_hint(
            "split the matrix into pipeline files of fewer builds (by platform, say), one CI file each",
        ));
    }
    if a.pipeline.is_absolute()
        || a.pipeline.components().any(|c| matches!(c, std::path::Component::ParentDir))
    {
        crate::output::warning(format!(
            "the CI jobs will look for the pipeline file at {}, as given; give it relative to the repository's root",
            a.pipeline.display()
        ));
    }
    if let Some(db) = &a.store {
        let lower = db.to_ascii_lowercase();
        let postgres = lower.starts_with("postgres://")
            || lower.starts_with("postgresql://")
            || buildstate_postgres::conninfo::is_key_value(db);
        if !postgres {
            crate::output::warning(format!(
                "--store {} is not PostgreSQL: each CI runner would have a store of its own, and a re-run job on another runner would not find its build",
                crate::config::redact_url(db)
            ));
        }
    }
    if let Some(url) = &a.server
        && url.to_ascii_lowercase().starts_with("http://")
    {
        crate::output::warning("--server is http://: the jobs' token would cross the network in the clear");
    }
    let store = match (a.store.clone(), a.server.clone()) {
        (Some(url), _) => StoreRef::Db(no_secret("--store", url)?),
        (None, Some(url)) => StoreRef::Server(no_secret("--server", url)?),
        (None, None) => StoreRef::Variable,
    };
    let engine = match a.engine {
        Engine::Gitlab => "gitlab",
        Engine::Github => "github",
        Engine::Concourse => "concourse",
    };
    let mut invocation =
        format!("buildstate generate {engine} {}", super::kept::quote(&a.pipeline.display().to_string()));
    if a.per_milestone {
        invocation.push_str(" --per-milestone");
    }
    let plan = Plan {
        title: pipeline.name.to_string(),
        pipeline,
        path: a.pipeline.display().to_string(),
        store,
        per_milestone: a.per_milestone,
        command: a.command.clone(),
        invocation,
    };
    let text = render(a.engine, &plan);
    match &a.output {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?,
        None => crate::output::line(text.trim_end())?,
    }
    Ok(Exit::Ok)
}

/// The engine's file for `plan`.
pub fn render(engine: Engine, plan: &Plan) -> String {
    match engine {
        Engine::Gitlab => generate_engines::gitlab(plan),
        Engine::Github => generate_engines::github(plan),
        Engine::Concourse => generate_engines::concourse(plan),
    }
}

/// A URL is written into a file in the repository: one that carries a password or a
/// credential parameter is refused, naming where the secret goes instead.
fn no_secret(flag: &str, url: String) -> Result<String, CliError> {
    let shown = crate::config::redact_url(&url);
    // A fragment is never a server's business, and a token may hide there.
    if shown == url && !url.contains('#') {
        return Ok(url);
    }
    let hint = if flag == "--server" {
        "give the server's URL alone: its token comes from the CI secret BUILDSTATE_TOKEN"
    } else {
        "give the URL without its password and set the password as a CI secret (PGPASSWORD), or leave --store out and set BUILDSTATE_DB as a secret CI variable"
    };
    let shown = shown.split('#').next().unwrap_or_default().to_owned();
    Err(CliError::usage(format!(
        "{flag} {shown}… holds a secret, and the generated file is committed to the repository"
    ))
    .with_hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_secrets_are_refused_and_quoting_round_trips() {
        assert!(no_secret("--store", "postgres://ci@db/bs".into()).is_ok());
        let e = no_secret("--store", "postgres://ci:s3cret@db/bs".into()).expect_err("refused");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(no_secret("--server", "https://bs.example.com/?token=abc".into()).is_err());
        let fragment = no_secret("--server", "https://bs.example.com/#bst_abc".into()).expect_err("refused");
        assert!(!fragment.to_string().contains("bst_abc"), "{fragment}");
        assert_eq!(q("a: b # c"), "\"a: b # c\"");
        assert_eq!(q("it's \"x\""), r#""it's \"x\"""#);
    }
}
