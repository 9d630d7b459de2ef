//! Driving one build through its milestones under a lease.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{Build, BuildStatus, Command, EventKind, StateCode};
use buildstate_store::{Guard, Store, StoreError};
use tokio::sync::{mpsc, watch};

use super::classify::{failure_for, with_report};
use super::keeper::LeaseKeeper;
use super::select::Target;
use super::{BuildOutcome, Progress, RunOptions};
use crate::executor::{OutputMode, StepEnd, StepRequest, run_step};
use crate::integrate::{STEP_REPORT_ENV, STEP_UNTIL_ENV, StepReport};
use crate::pipeline::{Pipeline, Program, Step};

const SIGTERM: i32 = 15;

/// The outcome of a build this run did not touch.
pub(super) fn not_started(target: &Target, why: &str) -> BuildOutcome {
    let mut out = outcome_of(&target.build, target);
    out.note = Some(why.to_owned());
    out
}

fn outcome_of(build: &Build, target: &Target) -> BuildOutcome {
    BuildOutcome {
        id: Some(build.id),
        number: Some(build.number.clone()),
        cell: target.cell.clone(),
        state: build.state,
        state_name: build.state_name().to_owned(),
        status: Some(build.status),
        needs_intervention: build.needs_intervention,
        resumed_at: None,
        done_before: 0,
        saved: Duration::ZERO,
        milestones_run: 0,
        attempts: 0,
        elapsed: Duration::ZERO,
        note: None,
        taken: false,
    }
}

/// What one run did to one build, as it goes.
struct Tally {
    milestones: BTreeMap<StateCode, u32>,
}

/// Drives one build under its lease. `wait` says what to do when another live runner
/// holds it: `run` waits for it and reports what it achieved (two runs of one pipeline
/// both succeed); a fleet worker does not wait — it moves on to another build.
pub(super) async fn drive(
    store: Arc<dyn Store>,
    pipeline: &Pipeline,
    opts: &RunOptions,
    target: Target,
    progress: &mpsc::UnboundedSender<Progress>,
    stop: watch::Receiver<Option<i32>>,
    wait: bool,
) -> BuildOutcome {
    let started = Instant::now();
    let b = &target.build;
    match b.status {
        BuildStatus::Completed => {
            return not_started(&target, "already delivered");
        }
        BuildStatus::Cancelled => {
            return not_started(&target, "cancelled; `buildstate rewind` reopens it");
        }
        _ => {}
    }
    let keeper = loop {
        match LeaseKeeper::acquire(store.clone(), b.id, &opts.actor, opts.lease_ttl.get()).await {
            Ok(k) => break k,
            // Another live runner runs it: wait, and report what it achieved, so that
            // two `run`s of one pipeline both succeed when everything was delivered.
            Err(StoreError::LeaseHeld { lease, .. }) if !wait => {
                let why = format!(
                    "not run: {} is running it; its lease expires at {}",
                    lease.holder(),
                    lease.expires_at
                );
                return not_started(&target, &why);
            }
            Err(StoreError::LeaseHeld { lease, .. }) => {
                match wait_for_holder(store.as_ref(), &lease, opts, stop.clone()).await {
                    Waited::Finished(build) => {
                        let mut out = outcome_of(&build, &target);
                        out.note = Some(format!("run by {}", lease.holder()));
                        return out;
                    }
                    Waited::Free => continue,
                    Waited::Stopped => {
                        let why = format!(
                            "not run: {} is running it; its lease expires at {}",
                            lease.holder(),
                            lease.expires_at
                        );
                        return not_started(&target, &why);
                    }
                    Waited::Failed(e) => return not_started(&target, &format!("not run: {e}")),
                }
            }
            Err(e) => return not_started(&target, &format!("not run: {e}")),
        }
    };
    if let Some(dead) = keeper.superseded() {
        tracing::warn!(
            build = %b.number,
            holder = %dead.holder(),
            "its runner is gone (no such process on this host); took the build over without waiting for the lease to expire"
        );
    }
    // Re-read under the lease: another runner may have moved the build since we chose it.
    let mut out = match store.build(b.id).await {
        Ok(build) => BuildOutcome { taken: true, ..outcome_of(&build, &target) },
        Err(e) => {
            keeper.release().await;
            return not_started(&target, &format!("not run: {e}"));
        }
    };
    let (step_stop, step_stop_rx) = watch::channel(None);
    let forward = tokio::spawn(forward_stop(stop.clone(), keeper.lost(), step_stop));
    let mut tally = Tally { milestones: BTreeMap::new() };
    let result =
        run_steps(&store, pipeline, opts, &target, &keeper, &mut out, &mut tally, progress, step_stop_rx)
            .await;
    forward.abort();
    // A runner that lost its lease (told by the heartbeat, or by a refused write) has
    // nothing to release: the lease is its successor's now.
    let lost = *keeper.lost().borrow() || matches!(result, Err(StoreError::StaleLease { .. }));
    if !lost {
        keeper.release().await;
    }
    out.note = match result {
        Ok(note) => note,
        Err(e) => Some(e.to_string()),
    };
    if let Ok(build) = store.build(b.id).await {
        out.state = build.state;
        out.state_name = build.state_name().to_owned();
        out.status = Some(build.status);
        out.needs_intervention = build.needs_intervention;
    }
    out.milestones_run = tally.milestones.len();
    out.attempts = tally.milestones.values().sum();
    out.elapsed = started.elapsed();
    out
}

/// How waiting for another runner's lease ended.
enum Waited {
    /// It let the build go finished (delivered, cancelled or failed): its outcome stands.
    Finished(Box<Build>),
    /// It let the build go unfinished, or its lease expired: try to take it.
    Free,
    /// This run was stopped meanwhile.
    Stopped,
    Failed(StoreError),
}

/// Waits while `held` (another runner's lease) is still held and unexpired.
async fn wait_for_holder(
    store: &dyn Store,
    held: &buildstate_core::Lease,
    opts: &RunOptions,
    mut stop: watch::Receiver<Option<i32>>,
) -> Waited {
    let poll = (opts.lease_ttl.get() / 3).clamp(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        if stop.borrow().is_some() {
            return Waited::Stopped;
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return Waited::Stopped,
        }
        let leases = match store.leases().await {
            Ok(l) => l,
            Err(e) => return Waited::Failed(e),
        };
        let now = buildstate_store::now();
        let still_held = leases.iter().any(|l| l.build_id == held.build_id && !l.is_expired(now));
        if still_held {
            continue;
        }
        let build = match store.build(held.build_id).await {
            Ok(b) => b,
            Err(e) => return Waited::Failed(e),
        };
        let released = !leases.iter().any(|l| l.build_id == held.build_id);
        let finished = build.status.is_terminal() || build.status == BuildStatus::Failed;
        return if released && finished { Waited::Finished(Box::new(build)) } else { Waited::Free };
    }
}

/// Raises the step's stop signal when the run is stopped or the lease is lost (`run`,
/// `worker` and `exec` alike: a step must not run on beside its build's next runner).
/// A CI job other than the one that created the build goes on with it (a re-run job,
/// the next milestone's job): its page is `ci.job` on the build, so that the build links
/// to the job whose log holds the attempt being made. Not written when nothing is left
/// to do, nor when the job is the creator (its page is the build's `ci_url`).
async fn note_ci_job(
    store: &dyn Store,
    build: &Build,
    opts: &RunOptions,
    guard: Guard,
) -> Result<(), StoreError> {
    let Some(url) = opts.ci_url.as_deref() else { return Ok(()) };
    let finished = matches!(build.status, BuildStatus::Completed | BuildStatus::Cancelled);
    let known = build.ci_url.as_deref() == Some(url)
        || build.metadata.iter().any(|(k, v)| k.as_str() == CI_JOB_KEY && v.as_str() == url);
    if finished || known {
        return Ok(());
    }
    let Ok(key) = buildstate_core::MetaKey::new(CI_JOB_KEY) else { return Ok(()) };
    let Ok(value) = buildstate_core::MetaValue::new(&key, url) else { return Ok(()) };
    store.apply(build.id, &Command::SetMeta { key, value: Some(value) }, guard).await?;
    Ok(())
}

/// The metadata key of the CI job that last went on with a build.
pub const CI_JOB_KEY: &str = "ci.job";

/// The milestones a tool step completed or skipped on its own (Packer's provisioners,
/// Ansible's plays), told as progress once the step ended: the runner only sees the
/// step, the history has each milestone.
async fn passed_by_step(
    store: &dyn Store,
    before: &Build,
    progress: &mpsc::UnboundedSender<Progress>,
) -> Result<(), StoreError> {
    let history = store.history(before.id).await?;
    for e in history.iter().filter(|e| e.seq > before.history_len) {
        let name = before.catalog.name_of(e.state).to_owned();
        let told = match e.kind {
            EventKind::Completed => Progress::Ended {
                build: before.number.clone(),
                state: e.state,
                name,
                attempt: e.attempt.max(1),
                duration: Duration::from_millis(e.duration_ms.unwrap_or(0)),
                ok: true,
                message: None,
                retry_in: None,
            },
            EventKind::Skipped => {
                Progress::Skipped { build: before.number.clone(), state: e.state, name, by_step: true }
            }
            _ => continue,
        };
        let _ = progress.send(told);
    }
    Ok(())
}

/// Why a run with `--through` left the build where it is.
fn past_through(through: StateCode, build: &Build) -> String {
    match build.status {
        BuildStatus::Failed => {
            format!(
                "past {through}, as far as --through takes it; it failed at {} and is left as it is",
                build.state
            )
        }
        _ => format!("past {through}, as far as --through takes it; the next run goes on at {}", build.state),
    }
}

pub async fn forward_stop(
    mut stop: watch::Receiver<Option<i32>>,
    mut lost: watch::Receiver<bool>,
    step_stop: watch::Sender<Option<i32>>,
) {
    loop {
        if let Some(sig) = *stop.borrow() {
            let _ = step_stop.send(Some(sig));
            return;
        }
        if *lost.borrow() {
            let _ = step_stop.send(Some(SIGTERM));
            return;
        }
        tokio::select! {
            changed = stop.changed() => if changed.is_err() { return },
            changed = lost.changed() => if changed.is_err() { return },
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_steps(
    store: &Arc<dyn Store>,
    pipeline: &Pipeline,
    opts: &RunOptions,
    target: &Target,
    keeper: &LeaseKeeper,
    out: &mut BuildOutcome,
    tally: &mut Tally,
    progress: &mpsc::UnboundedSender<Progress>,
    mut step_stop: watch::Receiver<Option<i32>>,
) -> Result<Option<String>, StoreError> {
    let guard = keeper.guard();
    let lost = keeper.lost();
    let id = target.build.id;
    let actor = opts.actor.as_str();
    let mut picked_up = false;
    // Attempts already made at a state when this run first reached it: the step's
    // retry budget counts from there, so a re-run gets the whole policy again.
    let mut base_attempts: BTreeMap<StateCode, u32> = BTreeMap::new();
    // Tool steps that ran to a successful end in this run (see `Pipeline::step_for`).
    let mut ran_through: BTreeSet<StateCode> = BTreeSet::new();
    loop {
        if *lost.borrow() {
            return Ok(Some(
                "lease lost: another runner took this build over, or the lease was broken (`lease break`); this run stopped writing".into(),
            ));
        }
        if let Some(sig) = *step_stop.borrow() {
            return Ok(Some(format!("interrupted by signal {sig}")));
        }
        let build = store.build(id).await?;
        // Past `--through` already: nothing of this run's to do, not even re-opening a
        // failure (hostile review: an earlier milestone's CI job re-run cleared a
        // failure that needed a person).
        if let Some(through) = opts.through.filter(|t| build.state > *t) {
            if !picked_up {
                pick_up(store.as_ref(), &build, target, out, progress).await?;
            }
            return Ok(Some(past_through(through, &build)));
        }
        if !picked_up {
            picked_up = true;
            pick_up(store.as_ref(), &build, target, out, progress).await?;
            note_ci_job(store.as_ref(), &build, opts, guard).await?;
            if build.status == BuildStatus::Failed {
                // Running the pipeline again is a person's decision to try again; when the
                // build needed a person, the override is recorded as forced.
                let reason = format!("re-run of pipeline {} by {actor}", pipeline.name);
                let retry = Command::Retry {
                    actor: actor.to_owned(),
                    reason: Some(reason),
                    force: build.needs_intervention,
                };
                store.apply(id, &retry, guard).await?;
                continue;
            }
        }
        match build.status {
            BuildStatus::Completed => return Ok(None),
            BuildStatus::Cancelled => return Ok(Some("cancelled while running".into())),
            BuildStatus::Failed => {
                return Ok(Some(format!("failed at {} ({})", build.state, build.state_name())));
            }
            BuildStatus::Pending | BuildStatus::Running => {}
        }
        let state = build.state;
        let name = build.state_name().to_owned();
        // A milestone a tool step covers runs that step again, unless the step already
        // ran to its end in this run without reaching it.
        let step = pipeline.step_for(state).filter(|s| s.state == state || !ran_through.contains(&s.state));
        let Some(step) = step else {
            record_unlisted(store.as_ref(), &build, pipeline, actor, guard, progress).await?;
            continue;
        };
        let attempt = build.attempt + 1;
        let base = *base_attempts.entry(state).or_insert(build.attempt);
        let log = super::logfile::attempt_log(&opts.logs_dir, &build, state, attempt);
        let report = log.with_extension("report.json");
        let start = Command::Start {
            state,
            actor: actor.to_owned(),
            log: Some(log.display().to_string()),
            // Holding the lease, an open attempt can only be a dead runner's.
            force: build.attempt_open(),
        };
        store.apply(id, &start, guard).await?;
        *tally.milestones.entry(state).or_insert(0) += 1;
        let _ = progress.send(Progress::Started {
            build: build.number.clone(),
            state,
            name: name.clone(),
            attempt,
        });
        let bin =
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "buildstate".into());
        let env = step_env(step, &build, pipeline, opts, attempt, keeper, &bin, &report);
        let program = step.program.expanded(&bin, build.number.as_str());
        let request = StepRequest {
            program: &program,
            workdir: &step.workdir,
            env: &env,
            timeout: step.timeout,
            log: &log,
            output: OutputMode::Capture,
            grace: opts.grace,
        };
        let result = run_step(request, step_stop.clone()).await;
        if *lost.borrow() {
            return Ok(Some(
                "lease lost: another runner took this build over, or the lease was broken (`lease break`); this run stopped writing".into(),
            ));
        }
        let told = StepReport::take(&report);
        // A tool step may have moved the build on through later milestones: its end is
        // the end of the milestone the build is at now.
        let mut now = store.build(id).await?;
        let at = now.state;
        if at != state {
            *tally.milestones.entry(at).or_insert(0) += 1;
            passed_by_step(store.as_ref(), &build, progress).await?;
        }
        let at_name = now.state_name().to_owned();
        if result.success() {
            ran_through.insert(step.state);
            if now.attempt_open() {
                let done = Command::Complete {
                    state: at,
                    actor: actor.to_owned(),
                    exit_code: result.exit_code(),
                    log: Some(log.display().to_string()),
                };
                store.apply(id, &done, guard).await?;
            }
            let _ = progress.send(Progress::Ended {
                build: build.number.clone(),
                state: at,
                name: at_name,
                attempt: now.attempt.max(1),
                duration: result.duration,
                ok: true,
                message: None,
                retry_in: None,
            });
            continue;
        }
        if !matches!(now.status, BuildStatus::Pending | BuildStatus::Running) {
            // The step recorded the build's end itself (cancelled, or failed outside the
            // runner's view): that stands.
            return Ok(Some(format!("{} at {at} ({at_name}) by its step", now.status)));
        }
        let base = if at == state {
            base
        } else {
            *base_attempts.entry(at).or_insert(now.attempt.saturating_sub(1))
        };
        if !now.attempt_open() {
            // It completed its milestones and failed before starting the next one: the
            // failure belongs to the milestone it stopped at.
            let start = Command::Start {
                state: at,
                actor: actor.to_owned(),
                log: Some(log.display().to_string()),
                force: false,
            };
            now = store.apply(id, &start, guard).await?.build;
        }
        let failure = with_report(failure_for(step, &result), told, step, &result);
        let class = failure.class;
        let message = failure.message.clone();
        let tries_this_run = now.attempt - base;
        let fail = Command::Fail {
            state: at,
            actor: actor.to_owned(),
            failure,
            max_attempts: base + step.retry.max_attempts,
            log: Some(log.display().to_string()),
        };
        store.apply(id, &fail, guard).await?;
        let interrupted = matches!(result.end, StepEnd::Interrupted(_));
        let retry_in = (!interrupted && step.retry.allows_retry(tries_this_run, class))
            .then(|| step.retry.backoff.delay(tries_this_run, draw()));
        let _ = progress.send(Progress::Ended {
            build: build.number.clone(),
            state: at,
            name: at_name.clone(),
            attempt: now.attempt,
            duration: result.duration,
            ok: false,
            message: Some(message.clone()),
            retry_in,
        });
        let Some(delay) = retry_in else {
            return Ok(Some(format!("failed at {at} ({at_name}): {message}")));
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = step_stop.changed() => {
                return Ok(Some(format!("interrupted while waiting to retry {at} ({at_name})")));
            }
        }
        let reason = format!(
            "automatic retry {} of {} ({class} failure)",
            tries_this_run,
            step.retry.max_attempts - 1
        );
        let retry = Command::Retry { actor: actor.to_owned(), reason: Some(reason), force: false };
        store.apply(id, &retry, guard).await?;
    }
}

/// Fills in where the run picked the build up, and what earlier runs had already done.
async fn pick_up(
    store: &dyn Store,
    build: &Build,
    target: &Target,
    out: &mut BuildOutcome,
    progress: &mpsc::UnboundedSender<Progress>,
) -> Result<(), StoreError> {
    let resumed = !target.created && build.started_at.is_some();
    if resumed {
        out.resumed_at = Some(build.state);
        let history = store.history(build.id).await?;
        // The latest completion of each milestone below the resume point is work this
        // run does not redo.
        let mut done: BTreeMap<StateCode, u64> = BTreeMap::new();
        for e in history.iter().filter(|e| e.kind == EventKind::Completed && e.state < build.state) {
            done.insert(e.state, e.duration_ms.unwrap_or(0));
        }
        out.done_before = build.catalog.codes().filter(|c| *c < build.state).count();
        out.saved = Duration::from_millis(done.values().sum());
    }
    let _ = progress.send(Progress::Picked {
        id: build.id,
        build: build.number.clone(),
        cell: target.cell.clone(),
        state: build.state,
        resumed,
        done_before: out.done_before,
    });
    Ok(())
}

/// A milestone the pipeline does not list: skipped, except delivery, which is the
/// build's last step and is recorded as completed with nothing to run.
async fn record_unlisted(
    store: &dyn Store,
    build: &Build,
    pipeline: &Pipeline,
    actor: &str,
    guard: Guard,
    progress: &mpsc::UnboundedSender<Progress>,
) -> Result<(), StoreError> {
    let state = build.state;
    let reason = match pipeline.step_for(state).map(|s| (&s.program, s.state)) {
        // A tool step covers it but ran to its end without reaching it.
        Some((Program::Tool(tool), at)) => format!("not reached by the {} step at {at}", tool.name()),
        _ => format!("not a step of pipeline {}", pipeline.name),
    };
    let command = if state == StateCode::DELIVERED {
        Command::Complete { state, actor: actor.to_owned(), exit_code: None, log: None }
    } else {
        Command::Skip { state, actor: actor.to_owned(), reason }
    };
    store.apply(build.id, &command, guard).await?;
    if state != StateCode::DELIVERED {
        let _ = progress.send(Progress::Skipped {
            build: build.number.clone(),
            state,
            name: build.state_name().to_owned(),
            by_step: false,
        });
    }
    Ok(())
}

/// The step's environment: the pipeline's, the platform's overrides, and what every
/// step may rely on (documented in docs/pipeline.md).
#[allow(clippy::too_many_arguments)]
fn step_env(
    step: &Step,
    build: &Build,
    pipeline: &Pipeline,
    opts: &RunOptions,
    attempt: u32,
    keeper: &LeaseKeeper,
    bin: &str,
    report: &std::path::Path,
) -> BTreeMap<String, String> {
    let mut env = step.env_for(&build.platform);
    if let Program::Tool(tool) = &step.program {
        env.extend(tool.env());
        let next =
            pipeline.steps.range((std::ops::Bound::Excluded(step.state), std::ops::Bound::Unbounded)).next();
        if let Some((code, _)) = next {
            env.insert(STEP_UNTIL_ENV.to_owned(), code.to_string());
        }
    }
    // A step may call buildstate itself (`meta set`, `artifact add`): it writes on
    // behalf of its runner, under the runner's lease.
    let pairs = [
        ("BUILDSTATE_BUILD", build.number.to_string()),
        ("BUILDSTATE_BUILD_ID", build.id.to_string()),
        ("BUILDSTATE_STATE", build.state.to_string()),
        ("BUILDSTATE_STATE_NAME", build.state_name().to_owned()),
        ("BUILDSTATE_ATTEMPT", attempt.to_string()),
        ("BUILDSTATE_PLATFORM", build.platform.to_string()),
        ("BUILDSTATE_OS", build.os.to_string()),
        ("BUILDSTATE_IMAGE", build.image_type.to_string()),
        ("BUILDSTATE_PIPELINE", pipeline.name.to_string()),
        ("BUILDSTATE_DB", opts.store_location.clone()),
        ("BUILDSTATE_BIN", bin.to_owned()),
        ("BUILDSTATE_LEASE_TOKEN", keeper.token().get().to_string()),
        // Where a tool may say how it failed (type, component, details).
        (STEP_REPORT_ENV, report.display().to_string()),
    ];
    env.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env
}

/// A uniform draw in [0, 1) for backoff jitter, from the process's hash seed and the
/// clock: good enough to spread retries, with no RNG dependency.
fn draw() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}
