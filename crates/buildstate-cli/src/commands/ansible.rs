//! `ansible callback-dir | replay | record`: the callback plugin shipped in the binary,
//! and recording the spool it writes. (`ansible-playbook REF -- ARGS…`, which sets all
//! of it up around a playbook, is in `ansible_playbook.rs`.)

use std::path::{Path, PathBuf};

use buildstate_core::BuildStatus;
use buildstate_runner::integrate::{Closing, Driver, STEP_REPORT_ENV, step_until};
use buildstate_runner::pipeline::RetryDefaults;
use sha2::{Digest, Sha256};

use super::ansible_spool::{self, Replayer};
use super::tool_session::drive_error;
use crate::cli::Ctx;
use crate::exit::CliError;

/// The plugin, as shipped: `buildstate ansible callback-dir` writes it out.
pub const PLUGIN: &str = include_str!("../../assets/ansible/buildstate.py");

/// The plugin's file name, which is also its `CALLBACK_NAME`.
pub const PLUGIN_NAME: &str = "buildstate";

/// Where the plugin's events go when not given: the plugin's own default, for replays.
pub const SPOOL_ENV: &str = "BUILDSTATE_ANSIBLE_SPOOL";

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Write the callback plugin (if changed) and print its directory, for
    /// ANSIBLE_CALLBACK_PLUGINS
    CallbackDir(CallbackDirArgs),
    /// Record what the plugin's spool holds and was not recorded yet (after buildstate
    /// was unavailable during a playbook)
    Replay(ReplayArgs),
    /// Record the spool up to its end; the plugin calls it at play boundaries
    #[command(hide = true)]
    Record(RecordArgs),
}

#[derive(Debug, clap::Args)]
pub struct CallbackDirArgs {
    /// Write the plugin into this directory [default: a versioned directory under the
    /// user's data dir]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The spool file the plugin wrote (named in its warning)
    spool: PathBuf,
    /// The build [default: the one the spool was written for]
    reference: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    spool: PathBuf,
}

impl Args {
    /// `callback-dir` needs no store.
    pub fn without_store(&self) -> Option<Result<(), CliError>> {
        match self {
            Args::CallbackDir(a) => Some(callback_dir(a)),
            _ => None,
        }
    }
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    match a {
        Args::CallbackDir(_) => Err(CliError::internal("callback-dir runs without a store")),
        Args::Replay(a) => {
            let done = record(ctx, &a.spool, a.reference.as_deref()).await?;
            crate::output::notice(format!("recorded {done} event(s) from {}", a.spool.display()));
            Ok(())
        }
        Args::Record(a) => {
            let reference = std::env::var("BUILDSTATE_BUILD").ok().filter(|r| !r.trim().is_empty());
            record(ctx, &a.spool, reference.as_deref()).await.map(|_| ())
        }
    }
}

/// Records the spool's events after its cursor on the build `reference` (else the one
/// the spool names). Never takes a lease: it writes under the token it inherited (the
/// wrapper's or the runner's), or none after the run, as a person would.
async fn record(ctx: &Ctx, spool: &Path, reference: Option<&str>) -> Result<usize, CliError> {
    let entries = ansible_spool::read(spool)?;
    let reference = match reference.map(str::to_owned).or_else(|| ansible_spool::build_of(&entries)) {
        Some(r) => r,
        None => {
            return Err(CliError::usage(format!("the spool {} names no build", spool.display()))
                .with_hint("give the build: `buildstate ansible replay SPOOL REF`"));
        }
    };
    let build = ctx.find(&reference).await?;
    // A spool written for another build would move this one through that build's plays
    // (hostile review). The spool's own build decides, when it still exists.
    if let Some(named) = ansible_spool::build_of(&entries)
        && let Ok(theirs) = ctx.store.find_build(&named).await
        && theirs.id != build.id
    {
        return Err(CliError::usage(format!(
            "the spool {} was written for build {}, not {}",
            spool.display(),
            theirs.number,
            build.number
        ))
        .with_hint("leave REF out to replay it into the build it names"));
    }
    // The wrapper refuses a finished build before Ansible runs; the plugin on its own
    // can only say so, and keeps the spool as it is (hostile review: it said nothing
    // and marked every event recorded).
    if matches!(build.status, BuildStatus::Completed | BuildStatus::Cancelled) {
        crate::output::warning(format!(
            "build {} is {}: nothing of this playbook is recorded (`buildstate rewind {} CODE --reason …` re-opens it)",
            build.number, build.status, build.number
        ));
        return Ok(0);
    }
    let report = std::env::var_os(STEP_REPORT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let closing = match report {
        Some(report) => Closing::Runner { report, until: step_until() },
        None => Closing::Here { retry: RetryDefaults::installed().clone() },
    };
    let log = std::env::var("BUILDSTATE_ANSIBLE_LOG").ok().filter(|l| !l.is_empty());
    let mut driver = Driver::attach(ctx.store.clone(), build.id, &ctx.actor, ctx.guard, closing, log)
        .await
        .map_err(drive_error)?;
    let mut replayer = Replayer { driver: &mut driver, store: ctx.store.clone() };
    Ok(replayer.run(spool, &entries).await?.recorded)
}

/// The plugin's default directory: versioned by content, so that two buildstate
/// versions on one machine never overwrite each other's plugin under a running playbook.
fn default_plugin_dir(flag: &str) -> Result<PathBuf, CliError> {
    let digest = Sha256::digest(PLUGIN.as_bytes());
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let version = format!("{}-{short}", env!("CARGO_PKG_VERSION"));
    dirs::data_dir().map(|d| d.join("buildstate").join("ansible").join(version)).ok_or_else(|| {
        CliError::usage("cannot find a data directory for the plugin (is HOME set?)")
            .with_hint(format!("pass {flag} DIR"))
    })
}

/// Writes the plugin into `dir` (or the default) unless it is there already, and
/// returns the directory. The file is renamed into place, so that a playbook starting
/// at the same moment loads the old plugin or the new one, never half of one.
/// `flag` is the option that chooses the directory, for the hint.
pub fn write_plugin(dir: Option<&Path>, flag: &str) -> Result<PathBuf, CliError> {
    let given = dir.is_some();
    let dir = match dir {
        // Absolute, since it is printed for ANSIBLE_CALLBACK_PLUGINS, which Ansible may
        // read from another directory.
        Some(d) if d.is_relative() => std::env::current_dir()
            .map_err(|e| CliError::internal(format!("cannot read the current directory: {e}")))?
            .join(d),
        Some(d) => d.to_owned(),
        None => default_plugin_dir(flag)?,
    };
    let file = dir.join(format!("{PLUGIN_NAME}.py"));
    if std::fs::read(&file).is_ok_and(|b| b == PLUGIN.as_bytes()) {
        return Ok(dir);
    }
    let failed = |e: std::io::Error| {
        // A directory given that cannot be written is the caller's to fix (exit 2).
        let exit = if given { crate::exit::Exit::Usage } else { crate::exit::Exit::Internal };
        CliError::new(exit, format!("cannot write the plugin into {}: {e}", dir.display()))
            .with_hint(format!("pass {flag} with a directory you can write"))
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let tmp = dir.join(format!(".{PLUGIN_NAME}.py.{}.tmp", std::process::id()));
    std::fs::write(&tmp, PLUGIN).map_err(failed)?;
    std::fs::rename(&tmp, &file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(e)
    })?;
    Ok(dir)
}

fn callback_dir(a: &CallbackDirArgs) -> Result<(), CliError> {
    let dir = write_plugin(a.dir.as_deref(), "--dir")?;
    println!("{}", dir.display());
    crate::output::notice(format!(
        "enable it with ANSIBLE_CALLBACK_PLUGINS={} ANSIBLE_CALLBACKS_ENABLED={PLUGIN_NAME} \
         (or callback_plugins and callbacks_enabled in ansible.cfg's [defaults]), and set BUILDSTATE_BUILD",
        dir.display()
    ));
    Ok(())
}
