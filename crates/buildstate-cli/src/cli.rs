//! The top level of the command line: global options, parsing, and the context every
//! command runs with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildstate_core::{Build, LeaseToken};
use buildstate_store::{Guard, Store};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, error::Error as ClapError};

use crate::commands::Command;
use crate::config::{Early, Settings, StoreChoice};
use crate::exit::{CliError, Exit};
use crate::output::ColorWhen;

/// Resumable, visible VM image builds: where every build is, and why it failed.
#[derive(Debug, Parser)]
#[command(name = "buildstate", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// The store [default: <data dir>/buildstate/buildstate.db]
    // `hide_env_values` on every env-backed flag: `--help` would print `[env: BUILDSTATE_DB=
    // postgres://ci:password@…]` otherwise. Empty (`BUILDSTATE_DB=`) means the default:
    // clap's own `PathBuf` parser would refuse it.
    #[arg(
        long,
        global = true,
        env = "BUILDSTATE_DB",
        value_name = "PATH",
        hide_env_values = true,
        value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
    )]
    pub db: Option<PathBuf>,
    /// Work through a `buildstate serve` instead of a store (https://…); its token is read
    /// from BUILDSTATE_TOKEN, or the config file's token_file, never from a flag
    #[arg(long, global = true, env = "BUILDSTATE_SERVER", value_name = "URL", hide_env_values = true)]
    pub server: Option<String>,
    /// Print JSON: reads print the data, writes print the resulting object
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, as recorded in history [default: $USER@hostname]
    #[arg(long, global = true, env = "BUILDSTATE_ACTOR", value_name = "NAME", hide_env_values = true)]
    pub actor: Option<String>,
    /// Copy every change of a build to object storage: s3://bucket/prefix,
    /// az://container/prefix, gs://bucket/prefix or file:///dir
    #[arg(long, global = true, env = "BUILDSTATE_SYNC", value_name = "URL", hide_env_values = true)]
    pub sync: Option<String>,
    /// Write under this lease token: set by `run` and `exec` for the steps they run, so
    /// that a step's own `buildstate` calls act for its runner
    // Its variable (and --config's) is added by `config::Early::command`, which leaves
    // out an empty one as unset: CI templates write `BUILDSTATE_LEASE_TOKEN: ""`.
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub lease_token: Option<u64>,
    /// The config file [default: $XDG_CONFIG_HOME/buildstate/config.toml]
    #[arg(long, global = true, value_name = "FILE", hide_env_values = true)]
    pub config: Option<PathBuf>,
    /// When to colour output (NO_COLOR turns auto off) [default: auto]
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    pub color: Option<ColorWhen>,
    /// Print no progress or information, only data and errors
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

/// What every command gets: the open store and the global options.
#[derive(Debug)]
pub struct Ctx {
    pub store: Arc<dyn Store>,
    /// A local path next to which runner logs go by default (the SQLite file, or a
    /// file under the data dir for network stores).
    pub db_path: PathBuf,
    /// Where the store is, for people (no password).
    pub location: String,
    /// The store as steps reach it (`BUILDSTATE_DB`).
    pub step_db: String,
    pub schema_version: u32,
    pub json: bool,
    pub actor: String,
    /// The object-storage target of `--sync`, if any.
    pub syncer: Option<std::sync::Arc<buildstate_sync::Syncer>>,
    /// What every write carries: the lease token of the runner we act for, if any.
    pub guard: Guard,
    /// `[cost]` of the config file: the hourly rate of each platform.
    pub cost_rates: std::collections::BTreeMap<String, f64>,
}

impl Ctx {
    /// The build a reference (id, number, or a unique prefix of either) means.
    pub async fn find(&self, reference: &str) -> Result<Build, CliError> {
        Ok(self.store.find_build(reference).await?)
    }
}

/// Reads the config file, then parses the command line over it; on failure prints the
/// message (help and version go to stdout, as clap does) and returns the exit code.
pub fn parse() -> Result<(Cli, Settings), Exit> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let reported = |e: CliError| {
        e.report();
        e.exit
    };
    // Built once: a command tree of this size costs a good part of a one-shot command's
    // start-up (benchmark (b)).
    let command = Cli::command();
    let early = Early::read(&args, &command).map_err(reported)?;
    let matches = early.command(command).try_get_matches_from(args).map_err(|e| report_clap_error(&e))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| report_clap_error(&e))?;
    let settings = early.resolve(&cli.global, &matches).map_err(reported)?;
    Ok((cli, settings))
}

/// Opens the store the settings name and runs the command (or runs it without one).
pub async fn run(cli: Cli, settings: Settings) -> Result<Exit, CliError> {
    // Once per process, before any pipeline file is read.
    let _ = settings.retry_defaults().install();
    if let Some(done) = cli.command.run_without_store(&settings, cli.global.json) {
        return done;
    }
    // `demo` keeps a scratch store of its own.
    let mut command = match cli.command {
        Command::Demo(a) => return crate::commands::run_demo(a).await,
        // The request on stdin names its store.
        Command::Concourse(a) => return crate::commands::run_concourse(a).await,
        command => command,
    };
    command.preflight()?;
    let opened = match settings.store()? {
        StoreChoice::Local(db) => crate::open::open(db.map(Path::new), command.access()).await?,
        StoreChoice::Server(url) => {
            command.through_server()?;
            let token = settings.token.as_ref().map(|(t, _)| t.secret()).transpose()?;
            crate::open::open_server(url, token.as_deref())?
        }
    };
    let syncer = match settings.sync.value.as_deref() {
        Some(url) => Some(crate::remote::syncer(url, &opened.local_anchor)?),
        None => None,
    };
    let store: Arc<dyn Store> = match &syncer {
        Some(s) => Arc::new(buildstate_sync::SyncedStore::new(opened.store, s.clone())),
        None => opened.store,
    };
    let ctx = Ctx {
        schema_version: opened.schema_version,
        store,
        syncer,
        location: opened.location,
        step_db: opened.step_db,
        db_path: opened.local_anchor,
        json: cli.global.json,
        actor: settings.actor.value,
        guard: cli.global.lease_token.map_or_else(Guard::none, |t| Guard::lease(LeaseToken::new(t))),
        cost_rates: settings.cost,
    };
    command.run(&ctx).await.map_err(|e| e.in_store(&ctx.location))
}

/// `run \`buildstate state complete --help\`` from clap's usage line. The line itself
/// lists the global options that came from the environment, which is noise here.
fn help_hint(usage: &str) -> String {
    let path: Vec<&str> = usage.split_whitespace().take_while(|w| !w.starts_with(['-', '<', '['])).collect();
    format!("run `{} --help` for usage", path.join(" "))
}

/// Clap's errors in our shape: `error: …` on one line and a `hint:` (its tip or the
/// usage line), exit 2. A bad value names the argument and gives our parser's message,
/// already cleaned of control characters, instead of echoing the raw input.
fn report_clap_error(e: &ClapError) -> Exit {
    if !e.use_stderr() {
        // --help and --version.
        let _ = e.print();
        return Exit::Ok;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return Exit::Usage;
    }
    let rendered = e.render().to_string();
    let source = std::error::Error::source(e);
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(a)) => Some(a.as_str()),
        _ => None,
    };
    let message = match (e.kind(), source, arg) {
        (ErrorKind::ValueValidation, Some(src), Some(arg)) => {
            format!("invalid value for {arg}: {src}")
        }
        // The first paragraph: "error: …" plus indented continuation lines such as
        // the list of missing arguments.
        _ => {
            let para: Vec<&str> =
                rendered.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let joined = para.join(" ");
            joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
        }
    };
    let hint = rendered
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("tip: "))
        .map(str::to_owned)
        .or_else(|| rendered.lines().find_map(|l| l.strip_prefix("Usage: ")).map(help_hint));
    let err = CliError::usage(message);
    match hint {
        Some(h) => err.with_hint(h),
        None => err,
    }
    .report();
    Exit::Usage
}
