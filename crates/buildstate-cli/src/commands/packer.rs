//! `packer REF [--map FILE] -- packer build [ARGS…] TEMPLATE`: runs Packer with
//! `-machine-readable` and moves the build through milestones as Packer passes them.
//!
//! Without a map, the build's current milestone is the whole Packer run. A map ties
//! provisioner indexes and `ui say` patterns to milestones, so one run can pass several.
//! A failing builder, provisioner or post-processor becomes a failure of type `packer`
//! naming the component; on success the manifest post-processor's entries of this run
//! become artifacts. Packer's output is shown as it would be without
//! `-machine-readable`; the raw stream goes to the attempt log. The exit code is Packer's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use buildstate_core::FailureInfo;
use buildstate_runner::dispatch::{build_log_dir, failure_for};
use buildstate_runner::executor::{OutputMode, StepEnd, StepRequest, StepResult, run_step_to};
use buildstate_runner::integrate::Driver;
use buildstate_runner::packer::{Progress, cloud_of};
use buildstate_runner::pipeline::{Program, RetryDefaults, Step};

use super::kept::{self, Kept};
use super::manifest_ingest::{self, Ingest};
use super::packer_follow::Follow;
use super::packer_input;
use super::run::{RunnerArgs, parse_duration};
use super::tool_session::{self, Start, ToolSession, drive_error};
use crate::cli::Ctx;
use crate::exit::{CliError, Exit};

/// Where the manifest post-processor writes when the template does not say.
const DEFAULT_MANIFEST: &str = "packer-manifest.json";

/// Where a template may write this run's manifest (its own file, beside the log).
const MANIFEST_ENV: &str = "BUILDSTATE_PACKER_MANIFEST";

/// The exit code when Packer succeeded but its artifacts could not be recorded.
const ARTIFACTS_EXIT: i32 = 1;

/// The Packer variable the build number is passed in, for the manifest's `custom_data`.
const BUILD_VARIABLE_ENV: &str = "PKR_VAR_buildstate_build";

/// A run in which Packer built nothing (it exits 0) is a failure with this message, and
/// `buildstate packer` exits [`NO_BUILD_EXIT`].
const NO_BUILD: &str = "Packer ran no build: check -only/-except and the template's sources";
const NO_BUILD_EXIT: i32 = 1;

/// The pipe between Packer's stdout and the follower: enough for a burst of lines.
const PIPE_BYTES: usize = 256 * 1024;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// Provisioner indexes and `ui say` patterns → milestones (YAML or JSON)
    /// [default: $BUILDSTATE_PACKER_MAP]
    #[arg(long, value_name = "FILE")]
    map: Option<PathBuf>,
    /// On failure keep the builder's VM this long for debugging (passes
    /// `-on-error=abort`), recorded for `buildstate kept reap`
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    keep_on_failure: Option<Duration>,
    /// Clean-up command of kept VMs, run by `kept reap` with `sh -c`; `{id}`, `{cloud}`,
    /// `{region}`, `{build}` are filled in [default: per cloud, e.g. `aws ec2
    /// terminate-instances --instance-ids {id}`; none for `null`]
    #[arg(long, value_name = "CMD", requires = "keep_on_failure")]
    cleanup: Option<String>,
    /// Where the template's manifest post-processor writes [default: packer-manifest.json]
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Record artifact files outside the working directory too
    #[arg(long)]
    allow_outside: bool,
    #[command(flatten)]
    runner: RunnerArgs,
    /// `packer build [ARGS…] TEMPLATE`, after `--`
    #[arg(required = true, num_args = 1.., value_name = "PACKER")]
    command: Vec<String>,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    let build = ctx.find(&a.reference).await?;
    packer_input::refuse_finished(&build)?;
    // Everything that can be refused is refused before Packer runs or anything is recorded.
    let map = packer_input::load_map(a.map.as_deref())?;
    packer_input::check_map(&map, &build)?;
    packer_input::refuse_past_map(&map, &build)?;
    let argv = packer_input::packer_argv(&a.command, a.keep_on_failure.is_some())?;
    match &a.cleanup {
        Some(cleanup) => packer_input::check_cleanup(cleanup)?,
        None if a.keep_on_failure.is_some() => packer_input::check_default_cleanups(&argv)?,
        None => {}
    }
    packer_input::check_program(&argv[0])?;
    let logs_dir = a.runner.usable_logs_dir(ctx)?;
    let workdir = std::env::current_dir()
        .map_err(|e| CliError::internal(format!("cannot read the current directory: {e}")))?;
    let log = build_log_dir(&logs_dir, build.number.as_str()).join(format!(
        "{:03}-packer-e{}.log",
        build.state.get(),
        build.history_len + 1
    ));
    // Where this run's manifest may be: the one the template writes to
    // BUILDSTATE_PACKER_MANIFEST (this run's own, beside its log, so that builds run at
    // once in one directory never read each other's: hostile review), else the given
    // or default file.
    let own_manifest = log.with_extension("manifest.json");
    let manifest = a.manifest.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
    let manifest = if manifest.is_absolute() { manifest } else { workdir.join(manifest) };
    let manifest_before = stamp(&manifest);
    let session = ToolSession::open(
        ctx,
        &build,
        "packer",
        Start::Now,
        a.runner.lease_ttl,
        Some(log.display().to_string()),
    )
    .await?;
    let (stops, step_stop_rx) = session.watch_stops();
    let (mut driver, keeper) = session.into_parts();

    let env = packer_env(&driver, ctx, &own_manifest);
    let program = Program::Argv(argv.clone());
    let request = StepRequest {
        program: &program,
        workdir: &workdir,
        env: &env,
        timeout: None,
        log: &log,
        output: OutputMode::Passthrough,
        grace: a.runner.grace,
    };
    let (pipe_in, pipe_out) = tokio::io::duplex(PIPE_BYTES);
    let mut follow = Follow::new(Progress::new(map));
    let (result, ()) = tokio::join!(
        run_step_to(request, step_stop_rx, pipe_in, tokio::io::stderr()),
        follow.run(pipe_out, &mut driver, tokio::io::stdout(), tokio::io::stderr()),
    );
    stops.ended("packer", &build)?;

    // `-only=typo.x` makes Packer build nothing and exit 0: that must not complete the
    // milestone as if the image had been built.
    let built_nothing = result.success() && !follow.progress.ran_a_build();
    let mut unrecorded = false;
    let finished = if result.success() && !built_nothing {
        let manifest = if a.manifest.is_none() && stamp(&own_manifest).is_some() {
            (own_manifest.as_path(), None)
        } else {
            (manifest.as_path(), manifest_before)
        };
        match record_artifacts(ctx, &mut driver, &follow, manifest, &workdir, a.allow_outside).await {
            Ok(()) => driver.finish(true, result.exit_code(), || unreachable_failure(&result)).await,
            // Packer built the images, but they are not on record: a failure, never a
            // milestone completed with its artifacts silently missing.
            Err(e) => {
                unrecorded = true;
                let mut failure = packer_failure(&driver, &argv, &workdir, &result, &follow);
                failure.class = buildstate_core::FailureClass::Transient;
                failure.component = Some("manifest".to_owned());
                failure.message = format!("the run's artifacts were not recorded: {e}");
                failure.exit_code = None;
                crate::output::warning(format!("{}; the milestone is recorded as failed", failure.message));
                let output = follow.tail_text();
                if let Err(e) = driver.fail(failure.clone(), &output).await {
                    crate::output::warning(format!("could not record the failure: {}", drive_error(e)));
                }
                driver.finish(false, Some(ARTIFACTS_EXIT), || failure).await
            }
        }
    } else {
        let mut failure = packer_failure(&driver, &argv, &workdir, &result, &follow);
        if built_nothing {
            failure.component = Some("packer".to_owned());
            failure.message = NO_BUILD.to_owned();
            failure.exit_code = Some(NO_BUILD_EXIT);
            crate::output::warning(format!("{NO_BUILD}; the milestone is recorded as failed"));
        }
        let output = format!("{}\n{}", follow.tail_text(), result.tail);
        if let Err(e) = driver.fail(failure.clone(), &output).await {
            crate::output::warning(format!("could not record the failure: {}", drive_error(e)));
        }
        if let Some(keep) = a.keep_on_failure {
            keep_failed(ctx, &driver, &follow, keep, a.cleanup.as_deref()).await;
        }
        let exit = if built_nothing { Some(NO_BUILD_EXIT) } else { result.exit_code() };
        driver.finish(false, exit, || failure).await
    };
    tool_session::release(keeper).await;
    finished.map_err(drive_error)?;
    if built_nothing {
        return Ok(Exit::Passthrough(NO_BUILD_EXIT as u8));
    }
    if unrecorded {
        return Ok(Exit::Passthrough(ARTIFACTS_EXIT as u8));
    }
    Ok(Exit::Passthrough(exit_code(&result)))
}

/// What Packer is given besides our environment: the build, for `custom_data`, and
/// where this run's manifest goes (`variable "manifest" { default =
/// env("BUILDSTATE_PACKER_MANIFEST") }` in a template, see docs/packer.md).
fn packer_env(driver: &Driver, ctx: &Ctx, manifest: &Path) -> BTreeMap<String, String> {
    let b = driver.build();
    let mut env: BTreeMap<String, String> = [
        (BUILD_VARIABLE_ENV, b.number.to_string()),
        (MANIFEST_ENV, manifest.display().to_string()),
        ("BUILDSTATE_BUILD", b.number.to_string()),
        ("BUILDSTATE_BUILD_ID", b.id.to_string()),
        ("BUILDSTATE_DB", ctx.step_db.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(token) = driver.guard().lease {
        env.insert("BUILDSTATE_LEASE_TOKEN".to_owned(), token.get().to_string());
    }
    env
}

/// A file's size and modification time, to tell whether this run wrote it.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// After a successful run: the manifest's entries of this run when this run wrote the
/// manifest (`manifest.1`: its stamp before the run), else the artifacts Packer
/// announced.
async fn record_artifacts(
    ctx: &Ctx,
    driver: &mut Driver,
    follow: &Follow,
    (manifest, before): (&Path, Option<(u64, SystemTime)>),
    workdir: &Path,
    allow_outside: bool,
) -> Result<(), CliError> {
    let build = driver.build().clone();
    let written = stamp(manifest).is_some_and(|now| Some(now) != before);
    let artifacts = if written {
        // Packer writes file names relative to its working directory.
        let how = Ingest { all_runs: false, force: false, base: workdir.to_owned(), allow_outside };
        manifest_ingest::read(manifest, &build, &how)
    } else {
        manifest_ingest::from_events(&follow.progress.artifacts(), workdir, allow_outside)
    };
    let list = artifacts?;
    manifest_ingest::record(ctx.store.as_ref(), &build, &list, driver.guard()).await
}

/// The failure of a run that did not succeed: the failing component and its error lines
/// when Packer said them, else what the executor knows (interrupted, could not start).
fn packer_failure(
    driver: &Driver,
    argv: &[String],
    workdir: &Path,
    result: &StepResult,
    follow: &Follow,
) -> FailureInfo {
    let b = driver.build();
    let step = Step {
        state: b.state,
        program: Program::Argv(argv.to_vec()),
        workdir: workdir.to_owned(),
        env: BTreeMap::new(),
        platform_env: BTreeMap::new(),
        timeout: None,
        retry: RetryDefaults::installed().policy_for(b.state),
    };
    let mut failure = failure_for(&step, result);
    // The raw machine-readable tail is in the log; people read the rendered one.
    failure.details.remove("tail");
    // As a shell reads it, so that it can be copied back.
    let command = argv.iter().map(|w| super::kept::quote(w)).collect::<Vec<_>>().join(" ");
    failure.details.insert("command".to_owned(), command.into());
    let template = argv.last().cloned().unwrap_or_default();
    failure.details.insert("template".to_owned(), template.into());
    failure
        .details
        .insert("log_tail".to_owned(), buildstate_core::clean_text(&follow.tail_text(), usize::MAX).into());
    if !matches!(result.end, StepEnd::Exited(_)) {
        return failure;
    }
    let failures = follow.progress.failures();
    if let Some(first) = failures.first() {
        failure.component = Some(first.component_name());
        failure.message = format!("{}: {}", first.component_name(), first.message);
        failure.details.insert("build".to_owned(), first.build.clone().into());
        failure.details.insert("error_lines".to_owned(), first.error_lines.clone().into());
        if failures.len() > 1 {
            let others: Vec<String> = failures[1..]
                .iter()
                .map(|f| format!("{}: {}: {}", f.build, f.component_name(), f.message))
                .collect();
            failure.details.insert("other_failures".to_owned(), others.into());
        }
    } else if let Some(line) = follow.progress.general_errors().first() {
        failure.component = Some("packer".to_owned());
        failure.message = line.lines().next().unwrap_or(line).to_owned();
        failure.details.insert("error_lines".to_owned(), follow.progress.general_errors().to_vec().into());
    } else if let Some(last) = follow.tail.back() {
        // No error Packer's lines name: what a person saw last, not a raw
        // machine-readable line.
        failure.component = Some("packer".to_owned());
        failure.message = format!("packer exited with {}: {}", result.exit_code().unwrap_or(-1), last.trim());
    }
    failure
}

fn unreachable_failure(result: &StepResult) -> FailureInfo {
    // `finish(true, …)` never asks for a failure; this only satisfies its signature.
    FailureInfo {
        failure_type: buildstate_core::FailureType::unknown(),
        class: buildstate_core::FailureClass::Persistent,
        component: None,
        message: format!("packer {}", result.end),
        details: BTreeMap::new(),
        exit_code: result.exit_code(),
    }
}

/// With `--keep-on-failure`: one kept resource per failed build, with its id from
/// Packer's output (the build name when the builder said none).
async fn keep_failed(ctx: &Ctx, driver: &Driver, follow: &Follow, keep: Duration, cleanup: Option<&str>) {
    let build = driver.build().clone();
    let expires_at = buildstate_store::now()
        .checked_add(jiff::SignedDuration::try_from(keep).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MAX);
    let mut current = build.clone();
    for f in follow.progress.failures() {
        let cloud = cloud_of(&f.builder_type);
        let id = f.resource_id.clone().unwrap_or_else(|| f.build.clone());
        let Some(template) = cleanup.or_else(|| kept::default_cleanup(&cloud)) else {
            crate::output::warning(format!(
                "{} was kept but has no clean-up command; clean it up by hand",
                f.build
            ));
            continue;
        };
        let entry = Kept {
            cleanup: kept::render(template, &id, &cloud, None, build.number.as_str()),
            cloud,
            id,
            region: None,
            expires_at,
            reaping_since: None,
            reaping_until: None,
            reaped_at: None,
            reap_exit: None,
            reap_output: None,
        };
        match kept::record(ctx.store.as_ref(), &current, &entry, driver.guard()).await {
            Ok(key) => {
                crate::output::notice(format!(
                    "kept {} {} until {} ({key} of build {}); `buildstate kept reap` cleans it up after",
                    entry.cloud,
                    entry.id,
                    crate::output::time(expires_at),
                    build.number
                ));
                if let Ok(b) = ctx.store.build(build.id).await {
                    current = b;
                }
            }
            Err(e) => crate::output::warning(format!("could not record kept {}: {}", entry.id, e)),
        }
    }
}

/// Packer's exit code, as a shell would report it.
fn exit_code(result: &StepResult) -> u8 {
    match &result.end {
        StepEnd::Exited(c) => u8::try_from(*c).unwrap_or(1),
        StepEnd::Signaled(s) | StepEnd::Interrupted(s) => u8::try_from(128 + s).unwrap_or(1),
        StepEnd::TimedOut => 124,
        StepEnd::SpawnFailed(why) => {
            eprintln!("buildstate packer: {why}");
            127
        }
    }
}
