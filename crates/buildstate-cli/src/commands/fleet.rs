//! Fleet mode: `enqueue` queues a pipeline's matrix builds; `worker` claims and runs
//! them (any number of workers, on any machines sharing the store); `workers`
//! (`workers.rs`) shows who is there and runs what.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use buildstate_runner::dispatch::{RunOptions, WorkerOptions, enqueue, hostname, select_cells, work};
use buildstate_runner::pipeline::{MatrixFilter, Pipeline};
use tokio::sync::mpsc;

use super::run::{RunnerArgs, parse_duration};
use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::{output, progress, signals};

#[derive(Debug, clap::Args)]
pub struct EnqueueArgs {
    /// The pipeline file (YAML; see docs/pipeline.md)
    pipeline: PathBuf,
    /// Only matrix cells matching KEY=VALUE[,KEY=VALUE…]; repeat to add more
    #[arg(long, value_name = "FILTER")]
    only: Vec<String>,
    /// Queue fresh builds even where the pipeline already has some
    #[arg(long = "new")]
    fresh: bool,
    /// Add the matrix's platforms, OS versions and image types missing from the catalog
    /// if they are well-known ones (the sample catalog's, with its attributes)
    #[arg(long)]
    add_missing: bool,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The pipeline file whose builds this worker runs
    pipeline: PathBuf,
    /// Only matrix cells matching KEY=VALUE[,KEY=VALUE…]; repeat to add more
    #[arg(long, value_name = "FILTER")]
    only: Vec<String>,
    /// This worker's name, recorded as the owner of its leases [default: worker-<host>-<pid>]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// How long to wait before looking again when every open build is taken
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    poll: Duration,
    /// Exit once the pipeline has no build left to run: 0 if every build this worker ran
    /// is delivered, 8 if not
    #[arg(long)]
    exit_when_idle: bool,
    #[command(flatten)]
    runner: RunnerArgs,
}

fn load(path: &std::path::Path, only: &[String]) -> Result<(Pipeline, MatrixFilter), CliError> {
    let pipeline = crate::input::pipeline(path)?;
    let filter = MatrixFilter::parse(only).map_err(|e| CliError::usage(e.to_string()))?;
    Ok((pipeline, filter))
}

fn options(ctx: &Ctx, filter: MatrixFilter, fresh: bool, actor: String, runner: &RunnerArgs) -> RunOptions {
    RunOptions {
        filter,
        jobs: 1,
        build: None,
        fresh,
        actor,
        lease_ttl: runner.lease_ttl,
        logs_dir: runner.logs_dir(ctx),
        grace: runner.grace,
        store_location: ctx.step_db.clone(),
        through: None,
        ci_url: None,
    }
}

pub async fn enqueue_run(a: EnqueueArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (pipeline, filter) = load(&a.pipeline, &a.only)?;
    // Before any build is created, as `run` does.
    let cells = select_cells(&pipeline, &filter)?;
    crate::catalog_hint::ensure_cells(ctx.store.as_ref(), &cells, a.add_missing).await?;
    let opts = options(ctx, filter, a.fresh, ctx.actor.clone(), &RunnerArgs::default());
    let builds = enqueue(ctx.store.as_ref(), &pipeline, &opts).await?;
    if ctx.json {
        return output::json(&builds.iter().map(output::BuildView::new).collect::<Vec<_>>());
    }
    let mut t = output::table(&["BUILD", "STATE", "STATUS"]);
    for b in &builds {
        t.add_row(vec![b.number.to_string(), output::state_label(b), output::status_label(b)]);
    }
    output::print_table(&t)?;
    output::line(format!("\n{} build(s) of pipeline {} queued for workers", builds.len(), pipeline.name))
}

pub async fn worker_run(a: WorkerArgs, ctx: &Ctx) -> Result<Exit, CliError> {
    let (pipeline, filter) = load(&a.pipeline, &a.only)?;
    let name = a.name.clone().unwrap_or_else(|| format!("worker-{}-{}", hostname(), std::process::id()));
    a.runner.usable_logs_dir(ctx)?; // before a build is taken, as `run` and `exec` do (exit 2)
    let opts = WorkerOptions {
        run: options(ctx, filter, false, name.clone(), &a.runner),
        poll: a.poll,
        exit_when_idle: a.exit_when_idle,
    };
    tracing::info!(worker = %name, pipeline = %pipeline.name, "worker started");
    let stop = signals::stop_on_signals();
    let (tx, rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(progress::print(rx, ctx.json));
    let summary = work(ctx.store.clone(), Arc::new(pipeline), opts, tx, stop).await;
    let _ = printer.await;
    let summary = summary?;
    let delivered = summary.outcomes.iter().filter(|o| o.delivered()).count();
    output::line(format!("worker {name}: ran {} build(s), {delivered} delivered", summary.outcomes.len()))?;
    if !summary.undelivered.is_empty() {
        let numbers: Vec<String> = summary.undelivered.iter().map(ToString::to_string).collect();
        output::line(format!("not delivered: {}", numbers.join(", ")))?;
    }
    Ok(worker_exit(summary.interrupted, summary.undelivered.len()))
}

/// SIGTERM is how service managers stop a worker: the step was stopped and recorded, the
/// lease released — a clean exit, 0. SIGINT (a person's Ctrl-C) reports 130. A worker
/// that ran out of work (`--exit-when-idle`) says 8 if a build it ran is not delivered,
/// as `run` does: a CI job of workers must not pass with a build stuck at 45.
fn worker_exit(interrupted: Option<i32>, undelivered: usize) -> Exit {
    match interrupted {
        Some(2) => Exit::Interrupted,
        Some(_) => Exit::Ok,
        None if undelivered > 0 => Exit::Undelivered,
        None => Exit::Ok,
    }
}
