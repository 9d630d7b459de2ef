//! `ansible-playbook REF -- ARGS…`: runs `ansible-playbook ARGS…` with the buildstate
//! callback enabled, so that its plays move the build through milestones; the output
//! and exit code are Ansible's own.
//!
//! The plugin records at play boundaries through `buildstate ansible record`, under
//! this command's lease (or the runner's, as a pipeline step). After Ansible exits, the
//! rest of the spool is recorded here (everything, if buildstate was unavailable to the
//! plugin), and the run's end: exit 0 completes the open milestone; a non-zero exit
//! with no failure recorded is a failure from the exit code.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use buildstate_core::{BuildStatus, FailureClass, FailureInfo};
use buildstate_runner::dispatch::build_log_dir;
use buildstate_runner::executor::{OutputMode, StepEnd, StepRequest, StepResult, run_step};
use buildstate_runner::integrate::Driver;
use buildstate_runner::pipeline::Program;

use super::ansible::{self, PLUGIN_NAME, SPOOL_ENV};
use super::ansible_config;
use super::ansible_spool::{self, Replayer};
use super::run::RunnerArgs;
use super::tool_session::{self, Start, ToolSession, drive_error};
use crate::cli::Ctx;
use crate::exit::{CliError, Exit};

/// The program run: `ansible-playbook` on PATH.
const ANSIBLE_PLAYBOOK: &str = "ansible-playbook";

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// Write the callback plugin here [default: a versioned directory under the data dir]
    #[arg(long, value_name = "DIR")]
    callback_dir: Option<PathBuf>,
    #[command(flatten)]
    runner: RunnerArgs,
    /// ansible-playbook's arguments (playbook, -i INVENTORY, …), after `--`
    #[arg(required = true, num_args = 1.., value_name = "ARGS")]
    args: Vec<String>,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    let build = ctx.find(&a.reference).await?;
    // Everything that can be refused is refused before Ansible runs or anything is recorded.
    if matches!(build.status, BuildStatus::Completed | BuildStatus::Cancelled) {
        return Err(CliError::new(
            Exit::Rejected,
            format!("build {} is {}; there is nothing left for a playbook to do", build.number, build.status),
        )
        .with_hint("`buildstate rewind REF CODE --reason …` moves a delivered build back first"));
    }
    if let Some(flag) = a.args.iter().find(|x| INFORMATIONAL.contains(&x.as_str())) {
        // Nothing is built: a syntax check or a listing is not an attempt of a milestone.
        tracing::info!(%flag, "ansible-playbook only checks or lists: nothing is recorded");
        return passthrough(&a.args);
    }
    if let Some(flag) = a.args.iter().find_map(|x| partial(x)) {
        // Some tasks are left out: the plays' milestones are not done, and must not
        // read as done to the next run (hostile review: `--tags` completed them).
        crate::output::notice(format!(
            "{flag} runs part of the playbook, which completes no milestone, so nothing is recorded; ansible-playbook runs as it is"
        ));
        return passthrough(&a.args);
    }
    if a.args.iter().any(|x| check_mode(x)) {
        // A dry run changes nothing on the hosts, so it moves no milestone (hostile
        // review: `--check` completed them).
        crate::output::notice(
            "--check changes nothing, so nothing is recorded; ansible-playbook runs as it is",
        );
        return passthrough(&a.args);
    }
    let logs_dir = a.runner.usable_logs_dir(ctx)?;
    let plugin_dir = ansible::write_plugin(a.callback_dir.as_deref(), "--callback-dir")?;
    let workdir = std::env::current_dir()
        .map_err(|e| CliError::internal(format!("cannot read the current directory: {e}")))?;
    let stem = format!("{:03}-ansible-e{}", build.state.get(), build.history_len + 1);
    let log = build_log_dir(&logs_dir, build.number.as_str()).join(format!("{stem}.log"));
    // One spool per run, beside its log, unless the caller chose one.
    let spool = std::env::var_os(SPOOL_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| log.with_file_name(format!("{stem}.spool.jsonl")), PathBuf::from);

    let session = ToolSession::open(
        ctx,
        &build,
        "ansible-playbook",
        Start::WhenReached,
        a.runner.lease_ttl,
        Some(log.display().to_string()),
    )
    .await?;
    let (stops, step_stop_rx) = session.watch_stops();
    let (mut driver, keeper) = session.into_parts();

    let env = ansible_env(&driver, ctx, &plugin_dir, &spool, &log, &workdir)?;
    // `-- ansible-playbook site.yml` reads naturally too: the program is always ours.
    let args = match a.args.split_first() {
        Some((first, rest)) if first == ANSIBLE_PLAYBOOK => rest,
        _ => &a.args[..],
    };
    let mut argv = vec![ANSIBLE_PLAYBOOK.to_owned()];
    argv.extend(args.iter().cloned());
    let program = Program::Argv(argv);
    let request = StepRequest {
        program: &program,
        workdir: &workdir,
        env: &env,
        timeout: None,
        log: &log,
        output: OutputMode::Passthrough,
        grace: a.runner.grace,
    };
    let result = run_step(request, step_stop_rx).await;
    stops.ended(ANSIBLE_PLAYBOOK, &build)?;

    let finished = finish(ctx, &mut driver, &spool, &result).await;
    tool_session::release(keeper).await;
    if let Err(e) = finished {
        // Ansible ran and its result stands; what is not recorded is kept in the spool.
        crate::output::warning(format!(
            "{e}; events are kept in {}; run `buildstate ansible replay {}`",
            spool.display(),
            spool.display()
        ));
    }
    Ok(Exit::Passthrough(exit_code(&result)))
}

/// Records what the plugin did not, then the run's end.
async fn finish(ctx: &Ctx, driver: &mut Driver, spool: &Path, result: &StepResult) -> Result<(), CliError> {
    let mut failed = false;
    if spool.exists() {
        let entries = ansible_spool::read(spool)?;
        let mut replayer = Replayer { driver, store: ctx.store.clone() };
        failed = replayer.run(spool, &entries).await?.run.failed;
    }
    if failed {
        // The plugin's failure (task, host, message) is the record; the exit code adds nothing.
        return Ok(());
    }
    let success = result.success();
    // `finish` consumes a driver; this one is borrowed, so it is re-attached.
    let again = Driver::attach(
        ctx.store.clone(),
        driver.build().id,
        &ctx.actor,
        driver.guard(),
        driver.closing().clone(),
        Some(result.log.display().to_string()),
    )
    .await
    .map_err(drive_error)?;
    again.finish(success, result.exit_code(), || exit_failure(result)).await.map_err(drive_error)?;
    Ok(())
}

/// Ansible failed before or outside any task (a syntax error, a missing playbook, a
/// signal): the exit code and output tail are all there is.
fn exit_failure(result: &StepResult) -> FailureInfo {
    let (class, message) = match &result.end {
        StepEnd::Exited(c) => (FailureClass::Persistent, format!("ansible-playbook exited with code {c}")),
        StepEnd::SpawnFailed(why) => {
            (FailureClass::Persistent, format!("ansible-playbook could not start: {why}"))
        }
        other => (FailureClass::Transient, format!("ansible-playbook {other}")),
    };
    let mut details = BTreeMap::new();
    details.insert("tail".to_owned(), buildstate_core::clean_text(&result.tail, usize::MAX).into());
    FailureInfo {
        failure_type: ansible_spool::ansible_type(),
        class,
        component: Some("ansible-playbook".to_owned()),
        message,
        details,
        exit_code: result.exit_code(),
    }
}

/// The plugin enabled beside what the user configured (in the environment or in
/// ansible.cfg, see `ansible_config`): our directory first in ANSIBLE_CALLBACK_PLUGINS,
/// our name added to ANSIBLE_CALLBACKS_ENABLED (the stdout callback is another setting
/// and stays the user's).
fn ansible_env(
    driver: &Driver,
    ctx: &Ctx,
    plugin_dir: &Path,
    spool: &Path,
    log: &Path,
    workdir: &Path,
) -> Result<BTreeMap<String, String>, CliError> {
    let b = driver.build();
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the buildstate binary: {e}")))?;
    let theirs = ansible_config::callbacks(&|k| std::env::var(k).ok(), workdir);
    let plugins = prepend_path(plugin_dir, theirs.plugin_paths.map(OsString::from));
    let enabled = append_name(theirs.enabled.as_deref());
    let mut env: BTreeMap<String, String> = [
        ("ANSIBLE_CALLBACK_PLUGINS", plugins),
        ("ANSIBLE_CALLBACKS_ENABLED", enabled),
        ("BUILDSTATE_BUILD", b.number.to_string()),
        ("BUILDSTATE_BUILD_ID", b.id.to_string()),
        ("BUILDSTATE_BIN", exe.display().to_string()),
        (SPOOL_ENV, spool.display().to_string()),
        ("BUILDSTATE_ANSIBLE_LOG", log.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Through a server the server's settings are inherited as they are; a local store
    // is named explicitly, as it was resolved here (a config file's `db` included).
    if std::env::var_os("BUILDSTATE_SERVER").is_none_or(|v| v.is_empty()) {
        env.insert("BUILDSTATE_DB".to_owned(), ctx.step_db.clone());
    }
    if let Some(token) = driver.guard().lease {
        env.insert("BUILDSTATE_LEASE_TOKEN".to_owned(), token.get().to_string());
    }
    Ok(env)
}

fn prepend_path(dir: &Path, existing: Option<OsString>) -> String {
    let ours = dir.display().to_string();
    match existing.map(|e| e.to_string_lossy().into_owned()).filter(|e| !e.is_empty()) {
        Some(e) => format!("{ours}:{e}"),
        None => ours,
    }
}

fn append_name(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if e.split(',').any(|n| n.trim() == PLUGIN_NAME) => e.to_owned(),
        Some(e) => format!("{e},{PLUGIN_NAME}"),
        None => PLUGIN_NAME.to_owned(),
    }
}

/// Ansible's exit code, as a shell would report it.
fn exit_code(result: &StepResult) -> u8 {
    match &result.end {
        StepEnd::Exited(c) => u8::try_from(*c).unwrap_or(1),
        StepEnd::Signaled(s) | StepEnd::Interrupted(s) => u8::try_from(128 + s).unwrap_or(1),
        StepEnd::TimedOut => 124,
        StepEnd::SpawnFailed(why) => {
            eprintln!(
                "buildstate ansible-playbook: {why} (is ansible-core installed? scripts/setup.sh installs it)"
            );
            127
        }
    }
}

/// Options with which ansible-playbook runs no play: they are passed through unrecorded.
const INFORMATIONAL: &[&str] =
    &["--syntax-check", "--list-tasks", "--list-hosts", "--list-tags", "--version", "--help", "-h"];

/// The options that run only part of a playbook's tasks, as given.
fn partial(arg: &str) -> Option<&'static str> {
    const LONG: &[&str] = &["--tags", "--skip-tags", "--start-at-task", "--step"];
    if let Some(flag) =
        LONG.iter().find(|f| arg == **f || arg.strip_prefix(**f).is_some_and(|r| r.starts_with('=')))
    {
        return Some(flag);
    }
    // `-t TAGS` or `-tTAGS`.
    arg.starts_with("-t").then_some("-t")
}

/// `--check`, `-C`, or `-C` among other short flags that take no value (`-vC`).
fn check_mode(arg: &str) -> bool {
    arg == "--check"
        || arg
            .strip_prefix('-')
            .filter(|flags| !flags.starts_with('-') && !flags.is_empty())
            .is_some_and(|flags| flags.contains('C') && flags.chars().all(|c| "vCDKkb".contains(c)))
}

/// Runs ansible-playbook with `args` as it is, exiting with its code.
fn passthrough(args: &[String]) -> Result<Exit, CliError> {
    let rest = match args.split_first() {
        Some((first, rest)) if first == ANSIBLE_PLAYBOOK => rest,
        _ => args,
    };
    let status = std::process::Command::new(ANSIBLE_PLAYBOOK).args(rest).status().map_err(|e| {
        CliError::new(Exit::Usage, format!("cannot run {ANSIBLE_PLAYBOOK}: {e}"))
            .with_hint("install ansible-core (scripts/setup.sh does) or put ansible-playbook on PATH")
    })?;
    let code = status.code().unwrap_or(1);
    Ok(Exit::Passthrough(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_added_to_what_the_user_enabled() {
        assert_eq!(append_name(None), "buildstate");
        assert_eq!(append_name(Some("timer, profile_tasks")), "timer, profile_tasks,buildstate");
        assert_eq!(append_name(Some("buildstate,timer")), "buildstate,timer");
        assert_eq!(prepend_path(Path::new("/p"), Some("/a:/b".into())), "/p:/a:/b");
        assert_eq!(prepend_path(Path::new("/p"), Some("".into())), "/p");
    }

    #[test]
    fn partial_runs_are_seen_however_they_are_spelt() {
        for (arg, flag) in [
            ("--tags", "--tags"),
            ("--tags=sec", "--tags"),
            ("-t", "-t"),
            ("-tsec", "-t"),
            ("--skip-tags", "--skip-tags"),
            ("--start-at-task=x", "--start-at-task"),
            ("--step", "--step"),
        ] {
            assert_eq!(partial(arg), Some(flag), "{arg}");
        }
        for arg in ["--tagsx", "site.yml", "-i", "--timeout=5", "-T"] {
            assert_eq!(partial(arg), None, "{arg}");
        }
    }

    #[test]
    fn check_mode_is_seen_however_it_is_spelt() {
        for yes in ["--check", "-C", "-vC", "-CD"] {
            assert!(check_mode(yes), "{yes}");
        }
        for no in ["-c", "--connection=C", "-eC=1", "site.yml", "-", "--", "-vvv"] {
            assert!(!check_mode(no), "{no}");
        }
    }
}
