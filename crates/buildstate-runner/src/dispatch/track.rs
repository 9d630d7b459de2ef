//! Track-only mode (`buildstate exec REF CODE -- CMD …`): one command as one attempt of
//! one milestone, with its output and exit code passed through unchanged. Any CI step
//! adopts buildstate with this one prefix.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use buildstate_core::{Build, BuildStatus, Command, StateCode};
use buildstate_store::{Store, StoreError};
use tokio::sync::watch;

use super::classify::failure_for;
use super::keeper::LeaseKeeper;
use super::{LeaseTtl, RunError};
use crate::executor::{OutputMode, StepRequest, StepResult, run_step};
use crate::pipeline::{Program, Step};

#[derive(Clone, Debug)]
pub struct TrackOptions {
    pub actor: String,
    pub lease_ttl: LeaseTtl,
    pub logs_dir: PathBuf,
    pub grace: Duration,
    pub timeout: Option<Duration>,
    pub workdir: PathBuf,
    pub store_location: String,
}

#[derive(Debug)]
pub struct TrackOutcome {
    pub result: StepResult,
    pub build: Build,
}

/// Records `argv` as the next attempt of milestone `state` of `build`, running it with
/// its output passed through. Refuses (before running anything) when the build is not
/// at `state`; re-opens a build that failed at `state` (a CI re-run is a person's
/// decision to try again).
///
/// When the lease is lost meanwhile (`lease break`, or a take-over), the command's
/// process group is stopped as on SIGTERM (then SIGKILL after the grace) and nothing
/// more is written, as `run` does: the store would refuse it (fencing), and the
/// attempt is left open for the build's next runner, whose start closes it as
/// abandoned. The error is [`StoreError::StaleLease`].
pub async fn track(
    store: Arc<dyn Store>,
    build: &Build,
    state: StateCode,
    argv: Vec<String>,
    opts: &TrackOptions,
    stop: watch::Receiver<Option<i32>>,
) -> Result<TrackOutcome, RunError> {
    let keeper = LeaseKeeper::acquire(store.clone(), build.id, &opts.actor, opts.lease_ttl.get()).await?;
    let outcome = attempt(store.as_ref(), build, state, argv, opts, &keeper, stop).await;
    // A lost lease is its successor's now (or nobody's): there is nothing to give back.
    let lost =
        *keeper.lost().borrow() || matches!(outcome, Err(RunError::Store(StoreError::StaleLease { .. })));
    if !lost {
        keeper.release().await;
    }
    outcome
}

/// The error of a track whose lease was lost while its command ran, naming the lease
/// that replaced it if there is one.
async fn lease_lost(store: &dyn Store, build: &Build, keeper: &LeaseKeeper) -> StoreError {
    let current = match store.leases().await {
        Ok(leases) => leases.into_iter().find(|l| l.build_id == build.id).map(Box::new),
        Err(e) => {
            tracing::debug!(error = %e, "could not read the lease that replaced this one");
            None
        }
    };
    StoreError::StaleLease { build: build.number.clone(), token: keeper.token(), current }
}

async fn attempt(
    store: &dyn Store,
    build: &Build,
    state: StateCode,
    argv: Vec<String>,
    opts: &TrackOptions,
    keeper: &LeaseKeeper,
    stop: watch::Receiver<Option<i32>>,
) -> Result<TrackOutcome, RunError> {
    let guard = keeper.guard();
    let actor = opts.actor.clone();
    let mut current = store.build(build.id).await?;
    if current.status == BuildStatus::Failed && current.state == state {
        let retry = Command::Retry {
            actor: actor.clone(),
            reason: Some("re-run by `buildstate exec`".to_owned()),
            force: current.needs_intervention,
        };
        current = store.apply(build.id, &retry, guard).await?.build;
    }
    let attempt = current.attempt + 1;
    let name = current.catalog.name_of(state).to_owned();
    let log = super::logfile::attempt_log(&opts.logs_dir, &current, state, attempt);
    let start = Command::Start {
        state,
        actor: actor.clone(),
        log: Some(log.display().to_string()),
        force: current.attempt_open() && current.state == state,
    };
    store.apply(build.id, &start, guard).await?;
    let step = Step {
        state,
        program: Program::Argv(argv),
        workdir: opts.workdir.clone(),
        env: BTreeMap::new(),
        platform_env: BTreeMap::new(),
        timeout: opts.timeout,
        // The configured policy for this milestone (config file `[retry.RANGE]`), else
        // the built-in one: what a pipeline step without its own `retry` would get.
        retry: crate::pipeline::RetryDefaults::installed().policy_for(state),
    };
    let env: BTreeMap<String, String> = [
        ("BUILDSTATE_BUILD", current.number.to_string()),
        ("BUILDSTATE_BUILD_ID", current.id.to_string()),
        ("BUILDSTATE_STATE", state.to_string()),
        ("BUILDSTATE_STATE_NAME", name),
        ("BUILDSTATE_ATTEMPT", attempt.to_string()),
        ("BUILDSTATE_DB", opts.store_location.clone()),
        ("BUILDSTATE_LEASE_TOKEN", keeper.token().get().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let request = StepRequest {
        program: &step.program,
        workdir: &step.workdir,
        env: &env,
        timeout: step.timeout,
        log: &log,
        output: OutputMode::Passthrough,
        grace: opts.grace,
    };
    let (step_stop, step_stop_rx) = watch::channel(None);
    let forward = tokio::spawn(super::build_loop::forward_stop(stop, keeper.lost(), step_stop));
    let result = run_step(request, step_stop_rx).await;
    forward.abort();
    if *keeper.lost().borrow() {
        tracing::warn!(
            build = %current.number,
            %state,
            attempt,
            "the lease was lost while the command ran; it was stopped and its attempt is not recorded"
        );
        return Err(lease_lost(store, &current, keeper).await.into());
    }
    let log = Some(log.display().to_string());
    let command = if result.success() {
        Command::Complete { state, actor, exit_code: result.exit_code(), log }
    } else {
        let max_attempts = step.retry.max_attempts;
        Command::Fail { state, actor, failure: failure_for(&step, &result), max_attempts, log }
    };
    let after = store.apply(build.id, &command, guard).await?.build;
    Ok(TrackOutcome { result, build: after })
}
