//! One module per command group; this enum only dispatches.

use clap::Subcommand;

use crate::cli::Ctx;
use crate::config::Settings;
use crate::exit::{CliError, Exit};

mod access;
mod ansible;
mod ansible_config;
mod ansible_playbook;
mod ansible_spool;
mod artifact;
mod build;
mod catalog;
mod completions;
mod concourse;
mod concourse_ops;
mod config;
mod demo;
mod exec;
mod failure;
mod fleet;
mod generate;
mod generate_engines;
mod history;
mod init;
mod kept;
mod lease;
mod logs;
mod manifest_ingest;
mod meta;
mod new;
mod new_files;
mod packer;
mod packer_follow;
mod packer_input;
mod prune;
mod report;
mod resume;
mod retry;
mod rewind;
mod run;
mod serve;
mod state;
mod sync;
mod token;
mod tool_session;
mod transfer;
mod wait;
mod webhook;
mod workers;

pub use concourse::run as run_concourse;
pub use demo::run as run_demo;
pub use run::parse_duration;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a small pipeline end to end on a scratch store: fail, retry, fix, resume
    Demo(demo::Args),
    /// Write a runnable image-build project (pipeline, Packer, Ansible, README) into a new directory
    New(new::Args),
    /// Create or migrate the store (and optionally load sample data)
    Init(init::Args),
    /// Platforms builds run on (clouds and regions)
    #[command(subcommand)]
    Platform(catalog::PlatformArgs),
    /// OS versions that are built
    #[command(subcommand)]
    Os(catalog::OsArgs),
    /// Image types that are built (base, hana, …)
    #[command(subcommand)]
    ImageType(catalog::ImageTypeArgs),
    /// Create, list, show and cancel builds
    #[command(subcommand)]
    Build(build::Args),
    /// Record the start, success or failure of a milestone
    #[command(subcommand)]
    State(state::Args),
    /// Re-open a failed build at the milestone that failed
    Retry(retry::Args),
    /// Move a build back to an earlier milestone (recorded, with a reason)
    Rewind(rewind::Args),
    /// Say what to run next for a build, and why (exit 0, 10, 11 or 12)
    Resume(resume::Args),
    /// Block until builds reach a milestone (exit 0), one never will (8) or the timeout passes (124)
    Wait(wait::Args),
    /// Write a GitLab, GitHub Actions or Concourse pipeline for a pipeline file's matrix
    Generate(generate::Args),
    /// The Concourse resource type: check, in DIR, out DIR (JSON on stdin, JSON on stdout)
    #[command(subcommand)]
    Concourse(concourse::Args),
    /// Run a pipeline file: create or resume its builds, retry, lease, report (exit 0, 8, 130, 143)
    Run(run::Args),
    /// Run one command as one attempt of one milestone, passing its output and exit code through
    Exec(exec::Args),
    /// Run `packer build` and move the build through the milestones it passes (-- packer build …)
    Packer(packer::Args),
    /// Cloud VMs kept after failed Packer runs (--keep-on-failure): list, reap
    #[command(subcommand)]
    Kept(kept::Args),
    /// Run ansible-playbook with the buildstate callback: plays move the build through milestones
    AnsiblePlaybook(ansible_playbook::Args),
    /// The Ansible callback plugin: callback-dir, replay
    #[command(subcommand)]
    Ansible(ansible::Args),
    /// Print the log of an attempt
    Logs(logs::Args),
    /// Queue a pipeline's matrix builds for workers
    Enqueue(fleet::EnqueueArgs),
    /// Claim and run a pipeline's queued builds, with other workers sharing the store
    Worker(fleet::WorkerArgs),
    /// List the workers seen in the last 24 h: the build each runs or idle, last seen, stale or exited
    Workers,
    /// Object-storage copies of builds (needs --sync URL): push, pull, status
    #[command(subcommand)]
    Sync(sync::Args),
    /// Answer a monitoring question: overview, matrix, running, attention, durations, cost, … (--list)
    Report(report::Args),
    /// The history of a build
    History(history::Args),
    /// Failure records: list and resolve
    #[command(subcommand)]
    Failure(failure::Args),
    /// Runners' leases on builds: list, break
    #[command(subcommand)]
    Lease(lease::Args),
    /// Key/value metadata of a build
    #[command(subcommand)]
    Meta(meta::Args),
    /// Images, disks and manifests a build produced
    #[command(subcommand)]
    Artifact(artifact::Args),
    /// Write a build as one JSON document
    Export(transfer::ExportArgs),
    /// Read a build from a JSON document written by `export`
    Import(transfer::ImportArgs),
    /// Serve the HTTP API over this store (--listen 127.0.0.1:8080)
    Serve(serve::Args),
    /// API tokens for `buildstate serve`: create (shown once), list, revoke
    #[command(subcommand)]
    Token(token::Args),
    /// Webhooks `buildstate serve` sends on transitions: add (secret shown once), list, remove, deliveries
    #[command(subcommand)]
    Webhook(webhook::Args),
    /// Delete old finished builds with their records and attempt logs (--dry-run: only say which)
    Prune(prune::Args),
    /// Settings from defaults, the config file, the environment and flags
    #[command(subcommand)]
    Config(config::Args),
    /// Print a shell completion script (bash, zsh, fish, …)
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff), or write one per command with --out-dir
    Man(completions::ManArgs),
}

impl Command {
    /// The commands that need no store run here, before one is opened (so that they
    /// work where no store is reachable, and never create one); `None` for the others.
    pub fn run_without_store(&self, settings: &Settings, json: bool) -> Option<Result<Exit, CliError>> {
        let done = match self {
            Command::Config(a) => config::run(a, settings, json),
            Command::Completions(a) => completions::completions(a),
            Command::Man(a) => completions::man(a),
            Command::New(a) => new::run(a),
            Command::Generate(a) => generate::run(a).map(|_| ()),
            Command::Ansible(a) => a.without_store()?,
            _ => return None,
        };
        Some(done.map(|()| Exit::Ok))
    }

    /// Checks that need no store, run before it is opened: a command refused for its own
    /// arguments must not have created a store first.
    pub fn preflight(&mut self) -> Result<(), CliError> {
        match self {
            Command::Run(a) => a.preflight(),
            _ => Ok(()),
        }
    }

    /// Refuses the commands that have no meaning through a server (`--server`): they
    /// make or serve a store of their own.
    pub fn through_server(&self) -> Result<(), CliError> {
        let what = match self {
            Command::Init(_) => "init creates a local store; the server's store is the one it serves",
            Command::Serve(_) => "serve serves a store; serving a server's client would only add a hop",
            _ => return Ok(()),
        };
        Err(CliError::usage(format!("{what}, so it does not work through --server"))
            .with_hint("run it where the store is, with --db (or without BUILDSTATE_SERVER)"))
    }

    pub async fn run(self, ctx: &Ctx) -> Result<Exit, CliError> {
        match self {
            Command::Init(a) => init::run(a, ctx).await,
            Command::Platform(a) => catalog::run(a, ctx).await,
            Command::Os(a) => catalog::run(a, ctx).await,
            Command::ImageType(a) => catalog::run(a, ctx).await,
            Command::Build(a) => build::run(a, ctx).await,
            Command::State(a) => state::run(a, ctx).await,
            Command::Retry(a) => retry::run(a, ctx).await,
            Command::Rewind(a) => rewind::run(a, ctx).await,
            // `resume` answers with its exit code (10, 11, 12): it is the only command
            // whose success is not always 0.
            Command::Resume(a) => return resume::run(a, ctx).await,
            Command::Wait(a) => return wait::run(a, ctx).await,
            // `run`, `demo` and `exec` answer with their own exit codes too.
            Command::Run(a) => return run::run(a, ctx).await,
            Command::Demo(a) => return demo::run(a).await,
            Command::Concourse(a) => return concourse::run(a).await,
            Command::Exec(a) => return exec::run(a, ctx).await,
            Command::Packer(a) => return packer::run(a, ctx).await,
            Command::Kept(a) => return kept::run(a, ctx).await,
            Command::AnsiblePlaybook(a) => return ansible_playbook::run(a, ctx).await,
            Command::Ansible(a) => ansible::run(a, ctx).await,
            Command::Logs(a) => logs::run(a, ctx).await,
            Command::Enqueue(a) => fleet::enqueue_run(a, ctx).await,
            Command::Worker(a) => return fleet::worker_run(a, ctx).await,
            Command::Workers => workers::run(ctx).await,
            Command::Sync(a) => return sync::run(a, ctx).await,
            Command::Report(a) => report::run(a, ctx).await,
            Command::History(a) => history::run(a, ctx).await,
            Command::Failure(a) => failure::run(a, ctx).await,
            Command::Lease(a) => lease::run(a, ctx).await,
            Command::Meta(a) => meta::run(a, ctx).await,
            Command::Artifact(a) => artifact::run(a, ctx).await,
            Command::Export(a) => transfer::export(a, ctx).await,
            Command::Import(a) => transfer::import(a, ctx).await,
            Command::Prune(a) => prune::run(a, ctx).await,
            Command::Token(a) => token::run(a, ctx).await,
            Command::Webhook(a) => webhook::run(a, ctx).await,
            Command::Serve(a) => serve::run(a, ctx).await,
            // Dispatched by `run_without_store` before any store is opened.
            Command::Config(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::New(_)
            | Command::Generate(_) => Err(CliError::internal("this command runs without a store")),
        }
        .map(|()| Exit::Ok)
    }
}
