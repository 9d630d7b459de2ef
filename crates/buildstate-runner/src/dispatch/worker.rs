//! Fleet mode: any number of workers, on any machines, share one store. `enqueue`
//! creates the pipeline's matrix builds; each worker repeatedly claims one build that is
//! queued, in progress under an expired lease, or failed with retries left, and drives
//! it. Claiming *is* taking the build's lease, which the store grants to exactly one
//! runner at a time — so no two workers ever run the same build, and a dead worker's
//! build is taken over once its lease expires.

use std::sync::Arc;
use std::time::Duration;

use buildstate_core::{Build, BuildId, BuildNumber, BuildStatus};
use buildstate_store::{BuildFilter, Store};
use tokio::sync::{mpsc, watch};

use super::presence::Presence;
use super::select::{self, Target};
use super::{BuildOutcome, Progress, RunError, RunOptions, build_loop};
use crate::pipeline::{MatrixCell, Pipeline};

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// How builds are run (the actor is the worker's name and lease owner).
    pub run: RunOptions,
    /// How long to wait before looking again when every open build is taken.
    pub poll: Duration,
    /// Exit once no build of the pipeline is left to run (instead of waiting for more).
    pub exit_when_idle: bool,
}

#[derive(Debug)]
pub struct WorkerSummary {
    pub outcomes: Vec<BuildOutcome>,
    pub interrupted: Option<i32>,
    /// The builds this worker ran that were not delivered when it stopped, read again
    /// then: one another worker took over and delivered meanwhile does not count.
    pub undelivered: Vec<BuildNumber>,
}

/// Creates (or finds) the pipeline's matrix builds, so that workers can claim them.
pub async fn enqueue(
    store: &dyn Store,
    pipeline: &Pipeline,
    opts: &RunOptions,
) -> Result<Vec<Build>, RunError> {
    Ok(select::targets(store, pipeline, opts).await?.into_iter().map(|t| t.build).collect())
}

/// Claims and drives builds until stopped (or idle, with `exit_when_idle`). The worker
/// is in the store's worker registry meanwhile, under its name (`opts.run.actor`):
/// beating every [`super::worker_heartbeat`] of its lease ttl, with the build it runs,
/// and marked exited when it returns.
pub async fn work(
    store: Arc<dyn Store>,
    pipeline: Arc<Pipeline>,
    opts: WorkerOptions,
    progress: mpsc::UnboundedSender<Progress>,
    stop: watch::Receiver<Option<i32>>,
) -> Result<WorkerSummary, RunError> {
    // A filter that selects no cell of the matrix would leave the worker idle for ever.
    super::select_cells(&pipeline, &opts.run.filter)?;
    let heartbeat = super::worker_heartbeat(opts.run.lease_ttl.get());
    // A token that may not write (through a server) is refused on every call the worker
    // would make: say so now, instead of polling for ever.
    let probe = buildstate_core::WorkerBeat {
        name: opts.run.actor.clone(),
        host: super::keeper::hostname(),
        pid: std::process::id(),
        heartbeat,
        build: None,
        starting: true,
    };
    if let Err(e @ buildstate_store::StoreError::Denied { .. }) = store.worker_beat(&probe).await {
        return Err(RunError::Store(e));
    }
    let (presence, progress) = Presence::start(store.clone(), &opts.run.actor, heartbeat, progress).await;
    let outcomes = claim_and_drive(&store, &pipeline, &opts, &progress, stop.clone()).await;
    drop(progress);
    presence.exit().await;
    let outcomes = outcomes?;
    let interrupted = *stop.borrow();
    let undelivered = undelivered(store.as_ref(), &outcomes).await?;
    Ok(WorkerSummary { outcomes, interrupted, undelivered })
}

/// The worker's loop: what `work` does between registering and exiting.
async fn claim_and_drive(
    store: &Arc<dyn Store>,
    pipeline: &Pipeline,
    opts: &WorkerOptions,
    progress: &mpsc::UnboundedSender<Progress>,
    mut stop: watch::Receiver<Option<i32>>,
) -> Result<Vec<BuildOutcome>, RunError> {
    let mut outcomes = Vec::new();
    loop {
        if stop.borrow().is_some() {
            break;
        }
        let open = claimable(store.as_ref(), pipeline, opts).await?;
        if open.is_empty() && opts.exit_when_idle {
            break;
        }
        let mut claimed = false;
        for build in open {
            if stop.borrow().is_some() {
                break;
            }
            let cell = MatrixCell {
                platform: build.platform.clone(),
                os: build.os.clone(),
                image_type: build.image_type.clone(),
            };
            let target = Target { cell, build, created: false };
            let outcome =
                build_loop::drive(store.clone(), pipeline, &opts.run, target, progress, stop.clone(), false)
                    .await;
            if outcome.taken {
                let _ = progress.send(Progress::Done(outcome.clone()));
                outcomes.push(outcome);
                claimed = true;
                // Look again from the top: the set of open builds changed.
                break;
            }
        }
        if !claimed {
            tokio::select! {
                () = tokio::time::sleep(opts.poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
    Ok(outcomes)
}

/// The builds among `outcomes` that are not delivered now, each once, in the order run.
async fn undelivered(store: &dyn Store, outcomes: &[BuildOutcome]) -> Result<Vec<BuildNumber>, RunError> {
    let mut seen: Vec<BuildId> = Vec::new();
    let mut out = Vec::new();
    for id in outcomes.iter().filter_map(|o| o.id) {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let build = store.build(id).await?;
        if !build.is_delivered() {
            out.push(build.number);
        }
    }
    Ok(out)
}

/// The pipeline's builds a worker may run, oldest first: queued, in progress (a lease
/// decides whether it is really free), or failed with retries left. A build that needs a
/// person is left to a person.
async fn claimable(
    store: &dyn Store,
    pipeline: &Pipeline,
    opts: &WorkerOptions,
) -> Result<Vec<Build>, RunError> {
    let mut builds = store.list_builds(&BuildFilter::default()).await?;
    builds.retain(|b| {
        select::belongs(b, &pipeline.name)
            && opts.run.filter.matches(&MatrixCell {
                platform: b.platform.clone(),
                os: b.os.clone(),
                image_type: b.image_type.clone(),
            })
            && match b.status {
                BuildStatus::Pending | BuildStatus::Running => true,
                BuildStatus::Failed => !b.needs_intervention,
                BuildStatus::Completed | BuildStatus::Cancelled => false,
            }
    });
    builds.reverse();
    Ok(builds)
}
