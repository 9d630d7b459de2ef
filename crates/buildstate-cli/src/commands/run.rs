//! `run PIPELINE`: create or resume the pipeline's builds and run them to delivery.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use buildstate_runner::dispatch::{LeaseTtl, RunOptions, RunSummary, run_pipeline, select_cells};
use buildstate_runner::pipeline::{MatrixFilter, Pipeline};
use tokio::sync::mpsc;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::{output, progress, signals};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (YAML; see docs/pipeline.md)
    pipeline: PathBuf,
    /// Only matrix cells matching KEY=VALUE[,KEY=VALUE…] (keys: platform, os, image; a
    /// value may end in *); repeat to add more cells
    #[arg(long, value_name = "FILTER")]
    only: Vec<String>,
    /// Builds to run at the same time
    #[arg(long, short = 'j', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Run the pipeline's steps on this one build (id, number or unique prefix)
    #[arg(long, value_name = "REF")]
    build: Option<String>,
    /// Start fresh builds instead of resuming the pipeline's existing ones
    #[arg(long = "new")]
    fresh: bool,
    /// Stop each build once it is past this milestone (exit 0 when all are): one CI job
    /// per milestone, each going on where the last one stopped
    #[arg(long, value_name = "CODE")]
    through: Option<buildstate_core::StateCode>,
    /// Add the matrix's platforms, OS versions and image types missing from the catalog
    /// if they are well-known ones (the sample catalog's, with its attributes)
    #[arg(long)]
    add_missing: bool,
    #[command(flatten)]
    runner: RunnerArgs,
    /// The pipeline and filter, read and checked by [`Args::preflight`] before the store
    /// is opened.
    #[arg(skip)]
    checked: Option<(Pipeline, MatrixFilter)>,
}

impl Args {
    /// What can be refused without a store, refused before one is opened — and so before
    /// a missing one is created: a pipeline file that is missing or invalid, an `--only`
    /// that is malformed or selects nothing, a logs directory that cannot be written.
    pub fn preflight(&mut self) -> Result<(), CliError> {
        if self.build.is_some() && !self.only.is_empty() {
            return Err(CliError::usage(
                "--build names the one build to run; --only selects cells of the matrix: give one",
            )
            .with_hint(
                "`--only` to run (and create) the cells' builds, `--build REF` to run one build that exists",
            ));
        }
        let pipeline = crate::input::pipeline(&self.pipeline)?;
        let filter = MatrixFilter::parse(&self.only).map_err(|e| CliError::usage(e.to_string()))?;
        if self.build.is_none() {
            select_cells(&pipeline, &filter)?;
        }
        if let Some(code) = self.through.filter(|c| !pipeline.catalog.contains(*c)) {
            return Err(CliError::usage(format!(
                "--through {code}: milestone {code} is not in pipeline {}'s catalog",
                pipeline.name
            ))
            .with_hint(format!(
                "its milestones: {}",
                pipeline.catalog.codes().map(|c| c.to_string()).collect::<Vec<_>>().join(" ")
            )));
        }
        if let Some(dir) = &self.runner.logs_dir {
            usable_logs_dir(dir)?;
        }
        self.checked = Some((pipeline, filter));
        Ok(())
    }
}

/// Settings shared by `run`, `exec` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// How long a runner's lease on a build lives without a heartbeat (90s, 2m, …; 3s to 24h)
    #[arg(long, default_value = "60s", value_parser = parse_lease_ttl, value_name = "DURATION")]
    pub lease_ttl: LeaseTtl,
    /// Between SIGTERM and SIGKILL when a step is stopped
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub grace: Duration,
    /// Where attempt logs go [default: logs/ beside the store]
    #[arg(long, value_name = "DIR")]
    pub logs_dir: Option<PathBuf>,
}

impl Default for RunnerArgs {
    /// The same defaults as the flags.
    fn default() -> Self {
        RunnerArgs { lease_ttl: LeaseTtl::DEFAULT, grace: Duration::from_secs(5), logs_dir: None }
    }
}

impl RunnerArgs {
    pub fn logs_dir(&self, ctx: &Ctx) -> PathBuf {
        self.logs_dir.clone().unwrap_or_else(|| crate::open::beside(&ctx.db_path, "logs"))
    }

    /// [`RunnerArgs::logs_dir`], created and checked to take files before any step runs.
    pub fn usable_logs_dir(&self, ctx: &Ctx) -> Result<PathBuf, CliError> {
        let dir = self.logs_dir(ctx);
        usable_logs_dir(&dir)?;
        Ok(dir)
    }
}

/// Creates the logs directory and checks that a file can be made in it. Refused here
/// with exit 2, a directory that cannot hold logs (under a regular file, read-only, on a
/// full disk) would fail every step at its start, be recorded as a persistent failure
/// of that milestone — a build failure the build did not have — and be retried.
pub fn usable_logs_dir(dir: &Path) -> Result<(), CliError> {
    let refused = |e: std::io::Error| {
        CliError::usage(format!("attempt logs cannot be written to {}: {e}", dir.display())).with_hint(
            "give --logs-dir (or BUILDSTATE_LOGS_DIR, or logs_dir in the config file) a directory that can be created and written",
        )
    };
    if dir.exists() && !dir.is_dir() {
        return Err(refused(std::io::Error::new(std::io::ErrorKind::NotADirectory, "it is not a directory")));
    }
    std::fs::create_dir_all(dir).map_err(refused)?;
    let probe = dir.join(format!(".buildstate-probe-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).map_err(refused)?;
    std::fs::remove_file(&probe).map_err(refused)
}

/// `90s`, `2m`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    buildstate_core::parse_duration(s)
}

/// `--lease-ttl`: a duration in the range the runner accepts, checked while the command
/// line is parsed (exit 2), so a bad value never reaches the store.
pub fn parse_lease_ttl(s: &str) -> Result<LeaseTtl, String> {
    LeaseTtl::new(parse_duration(s)?).map_err(|e| e.to_string())
}

pub async fn run(mut a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    if a.checked.is_none() {
        a.preflight()?;
    }
    let (pipeline, filter) =
        a.checked.take().ok_or_else(|| CliError::internal("the pipeline was checked"))?;
    let logs_dir = a.runner.usable_logs_dir(ctx)?;
    if a.build.is_none() {
        // Before any build is created: a filter that selects nothing, and a name missing
        // from the catalog (with the command that adds it).
        let cells = select_cells(&pipeline, &filter)?;
        crate::catalog_hint::ensure_cells(ctx.store.as_ref(), &cells, a.add_missing).await?;
    }
    let opts = RunOptions {
        filter,
        jobs: usize::from(a.jobs),
        build: a.build,
        fresh: a.fresh,
        actor: ctx.actor.clone(),
        lease_ttl: a.runner.lease_ttl,
        logs_dir,
        grace: a.runner.grace,
        store_location: ctx.step_db.clone(),
        through: a.through,
        ci_url: crate::ci_env::from_process_env(),
    };
    let summary = execute(ctx, Arc::new(pipeline), opts).await?;
    print_summary(ctx, &summary)?;
    Ok(exit_for(&summary))
}

/// Runs with live progress on stdout (unless `--json`) and stops on SIGINT/SIGTERM.
pub async fn execute(ctx: &Ctx, pipeline: Arc<Pipeline>, opts: RunOptions) -> Result<RunSummary, CliError> {
    let stop = signals::stop_on_signals();
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(progress::print(rx, ctx.json || output::quiet()));
    let summary = run_pipeline(ctx.store.clone(), pipeline, opts, tx, stop).await;
    let _ = printer.await;
    Ok(summary?)
}

/// 0 when every build is delivered (or past `--through`); 130/143 after SIGINT/SIGTERM;
/// 8 otherwise.
pub fn exit_for(summary: &RunSummary) -> Exit {
    match summary.interrupted {
        Some(2) => Exit::Interrupted,
        Some(_) => Exit::Terminated,
        None if summary.all_done() => Exit::Ok,
        None => Exit::Undelivered,
    }
}

pub fn print_summary(ctx: &Ctx, summary: &RunSummary) -> Result<(), CliError> {
    if ctx.json {
        let rows: Vec<serde_json::Value> = summary
            .outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "build": o.number.as_ref().map(|n| n.to_string()),
                    "id": o.id.map(|i| i.to_string()),
                    "platform": o.cell.platform.as_str(),
                    "os": o.cell.os.as_str(),
                    "image_type": o.cell.image_type.as_str(),
                    "state": o.state.get(),
                    "state_name": o.state_name,
                    "status": o.status.map(|s| s.as_str()),
                    "needs_intervention": o.needs_intervention,
                    "delivered": o.delivered(),
                    "resumed_at": o.resumed_at.map(|s| s.get()),
                    "milestones_done_before": o.done_before,
                    "saved_ms": o.saved.as_millis() as u64,
                    "milestones_run": o.milestones_run,
                    "attempts": o.attempts,
                    "elapsed_ms": o.elapsed.as_millis() as u64,
                    "note": o.note,
                })
            })
            .collect();
        return output::json(&serde_json::json!({ "builds": rows, "interrupted": summary.interrupted }));
    }
    let mut t = output::table(&["BUILD", "STATE", "STATUS", "MILESTONES RUN", "RESUMED AT", "TIME", "NOTE"]);
    for o in &summary.outcomes {
        let status = match (o.status, o.needs_intervention) {
            (Some(s), true) => format!("{s}, needs intervention"),
            (Some(s), false) => s.to_string(),
            (None, _) => "-".to_owned(),
        };
        t.add_row(vec![
            o.number.as_ref().map_or_else(|| "-".to_owned(), |n| n.to_string()),
            format!("{} ({})", o.state, o.state_name),
            status,
            if o.attempts == 0 {
                "-".to_owned()
            } else {
                format!("{} ({} attempts)", o.milestones_run, o.attempts)
            },
            o.resumed_at.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            output::duration(o.elapsed.as_millis() as u64),
            output::cell(o.note.as_deref().unwrap_or("-"), 70),
        ]);
    }
    output::line("")?;
    output::print_table(&t)?;
    let delivered = summary.outcomes.iter().filter(|o| o.delivered()).count();
    let saved: Duration = summary.outcomes.iter().map(|o| o.saved).sum();
    let skipped: usize = summary.outcomes.iter().map(|o| o.done_before).sum();
    output::line(format!("\n{delivered} of {} builds delivered", summary.outcomes.len()))?;
    if summary.outcomes.iter().any(|o| o.attempts == 0 && o.delivered()) {
        output::line("(builds delivered by an earlier run were left alone; `--new` starts fresh ones)")?;
    }
    if skipped > 0 {
        output::line(format!(
            "resume saved {skipped} milestone(s) already done ({} of recorded work) from running again",
            output::duration(saved.as_millis() as u64)
        ))?;
    }
    Ok(())
}
