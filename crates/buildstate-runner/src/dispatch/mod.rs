//! The dispatcher: owns build state and talks to the store. It decides what each build
//! runs next, hands one step at a time to the executor (which owns the child
//! processes), records every attempt, retries under the step's policy, and holds a
//! lease on every build it runs so that no two runners ever run one build at once.

mod build_loop;
mod classify;
mod error;
mod keeper;
mod logfile;
mod presence;
mod select;
#[cfg(test)]
pub(crate) mod tests;
mod track;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use buildstate_core::{BuildId, BuildNumber, BuildStatus, StateCode};
use buildstate_store::Store;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::pipeline::{MatrixCell, MatrixFilter, Pipeline};

pub use build_loop::forward_stop;
pub use classify::failure_for;
pub use error::{LeaseTtl, RunError};
pub use keeper::{LeaseKeeper, holder_is_gone, hostname, pid_alive};
pub use logfile::build_log_dir;
pub use presence::worker_heartbeat;
pub use select::{PIPELINE_KEY, build_of_cell, builds_of};
pub use track::{TrackOptions, TrackOutcome, track};
pub use worker::{WorkerOptions, WorkerSummary, enqueue, work};

/// How a run behaves; the CLI fills it from flags.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub filter: MatrixFilter,
    /// Builds run at the same time.
    pub jobs: usize,
    /// Run only this build (id, number or unique prefix) instead of the matrix.
    pub build: Option<String>,
    /// Start fresh builds instead of resuming the pipeline's existing ones.
    pub fresh: bool,
    /// Recorded as the actor of every transition and the owner of every lease.
    pub actor: String,
    /// A lease lives this long without a heartbeat; heartbeats come every third of it.
    pub lease_ttl: LeaseTtl,
    /// Attempt logs go to `<logs_dir>/<build number>/<code>-<name>-<attempt>.log`.
    pub logs_dir: PathBuf,
    /// Between SIGTERM and SIGKILL when a step is stopped.
    pub grace: Duration,
    /// Passed to steps as `BUILDSTATE_DB`, so that they can record artifacts.
    pub store_location: String,
    /// Stop each build once it is past this milestone, leaving the rest to a later run
    /// (`run --through`: a CI job per milestone). `None`: run to delivery.
    pub through: Option<StateCode>,
    /// The CI job running this (its page), recorded on the builds this run creates.
    pub ci_url: Option<String>,
}

/// What the dispatcher reports while it works (the CLI prints it).
#[derive(Clone, Debug)]
pub enum Progress {
    /// A build was picked up (its lease taken): new, or resumed at `state`.
    Picked {
        id: BuildId,
        build: BuildNumber,
        cell: MatrixCell,
        state: StateCode,
        resumed: bool,
        done_before: usize,
    },
    /// An attempt started.
    Started { build: BuildNumber, state: StateCode, name: String, attempt: u32 },
    /// An attempt ended.
    Ended {
        build: BuildNumber,
        state: StateCode,
        name: String,
        attempt: u32,
        duration: Duration,
        ok: bool,
        message: Option<String>,
        retry_in: Option<Duration>,
    },
    /// A milestone was recorded as skipped: one the pipeline does not list, or one a
    /// tool step passed without a part of its own (`by_step`).
    Skipped { build: BuildNumber, state: StateCode, name: String, by_step: bool },
    /// The build is finished for this run.
    Done(BuildOutcome),
}

/// Where one build stands at the end of a run.
#[derive(Clone, Debug)]
pub struct BuildOutcome {
    pub id: Option<BuildId>,
    pub number: Option<BuildNumber>,
    pub cell: MatrixCell,
    pub state: StateCode,
    pub state_name: String,
    pub status: Option<BuildStatus>,
    pub needs_intervention: bool,
    /// Where this run picked the build up, when it was not new.
    pub resumed_at: Option<StateCode>,
    /// Milestones completed by earlier runs that this run did not redo.
    pub done_before: usize,
    /// Their recorded duration: the work the resume saved.
    pub saved: Duration,
    /// Milestones this run executed (attempted at least once).
    pub milestones_run: usize,
    pub attempts: u32,
    pub elapsed: Duration,
    /// Why the build stopped short, when it did (a failure, a lease held elsewhere, …).
    pub note: Option<String>,
    /// Whether this runner took the build's lease (false: delivered, cancelled, or held
    /// by another runner).
    pub taken: bool,
}

impl BuildOutcome {
    pub fn delivered(&self) -> bool {
        self.status == Some(BuildStatus::Completed)
    }
}

/// The result of a whole run.
#[derive(Debug)]
pub struct RunSummary {
    pub outcomes: Vec<BuildOutcome>,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<i32>,
    /// The run's `through`, if it had one.
    pub through: Option<StateCode>,
}

impl RunSummary {
    pub fn all_delivered(&self) -> bool {
        self.outcomes.iter().all(BuildOutcome::delivered)
    }

    /// Every build got as far as the run was to take it: delivered, or past `through`
    /// (a failure at a later milestone is a later job's).
    pub fn all_done(&self) -> bool {
        self.outcomes.iter().all(|o| {
            o.delivered()
                || self.through.is_some_and(|t| {
                    o.state > t
                        && matches!(
                            o.status,
                            Some(BuildStatus::Pending | BuildStatus::Running | BuildStatus::Failed)
                        )
                })
        })
    }
}

/// The cells of `pipeline` that `filter` selects; refused when it selects none, since a
/// run (or a worker) that can have nothing to do was surely not what was meant.
pub fn select_cells<'p>(
    pipeline: &'p Pipeline,
    filter: &MatrixFilter,
) -> Result<Vec<&'p MatrixCell>, RunError> {
    let cells = pipeline.cells(filter);
    if cells.is_empty() {
        return Err(RunError::NothingSelected {
            pipeline: pipeline.name.clone(),
            filter: filter.to_string(),
            matrix: pipeline.matrix.iter().map(MatrixCell::to_string).collect(),
        });
    }
    Ok(cells)
}

/// Runs `pipeline` to completion (or interruption), `opts.jobs` builds at a time.
/// `stop` carries the signal (SIGINT, SIGTERM) that should stop everything.
pub async fn run_pipeline(
    store: Arc<dyn Store>,
    pipeline: Arc<Pipeline>,
    opts: RunOptions,
    progress: mpsc::UnboundedSender<Progress>,
    stop: watch::Receiver<Option<i32>>,
) -> Result<RunSummary, RunError> {
    let targets = select::targets(store.as_ref(), &pipeline, &opts).await?;
    let opts = Arc::new(opts);
    let slots = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        let (store, pipeline, opts, progress, stop, slots) =
            (store.clone(), pipeline.clone(), opts.clone(), progress.clone(), stop.clone(), slots.clone());
        tasks.spawn(async move {
            // A closed semaphore cannot happen (we never close it); treat it as "go".
            let _slot = slots.acquire_owned().await.ok();
            let outcome = if stop.borrow().is_some() {
                build_loop::not_started(&target, "the run was interrupted before this build started")
            } else {
                build_loop::drive(store, &pipeline, &opts, target, &progress, stop, true).await
            };
            let _ = progress.send(Progress::Done(outcome.clone()));
            (index, outcome)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(pair) => outcomes.push(pair),
            Err(e) => return Err(RunError::TaskFailed(e.to_string())),
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let interrupted = *stop.borrow();
    Ok(RunSummary {
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        interrupted,
        through: opts.through,
    })
}
