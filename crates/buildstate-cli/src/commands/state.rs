//! `state start|complete|fail REF CODE`: record what happened at a milestone.
//!
//! Like every manual write (`retry`, `rewind`, `build cancel`, `meta set`), these carry no
//! lease token: while a runner holds an unexpired lease on the build the store refuses
//! them (exit 5, naming the runner), because a person moving a build under a running
//! pipeline would race it. `buildstate lease break` frees a build whose runner is gone.

use buildstate_core::{
    Build, Command, FailureClass, FailureInfo, FailureType, MAX_NOTE_BYTES, RetryPolicy, StateCode,
    details_object,
};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::input::{self, Source};
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Begin an attempt at the current milestone
    Start(StartArgs),
    /// The milestone succeeded: advance to the next one (or deliver at 100)
    Complete(CompleteArgs),
    /// The milestone failed: the build stays there, with a failure record
    Fail(FailArgs),
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// The milestone's state code (0-100, in the build's catalog)
    #[arg(allow_negative_numbers = true)]
    code: StateCode,
    /// Where the attempt's log is
    #[arg(long, value_name = "PATH", value_parser = input::log_path)]
    log: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    target: Target,
    /// Abandon an open attempt (recorded as failed, type interrupted) instead of refusing
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, allow_negative_numbers = true)]
    exit_code: Option<i32>,
}

#[derive(Debug, clap::Args)]
pub struct FailArgs {
    #[command(flatten)]
    target: Target,
    /// The error message: TEXT, `-` to read stdin, or `@FILE` (long messages keep head and tail)
    #[arg(long, value_name = "TEXT|-|@FILE")]
    error: Option<String>,
    /// Failure type: packer, ansible, network, validation, timeout, … (a lowercase word)
    #[arg(long = "type", value_name = "TYPE", default_value = "unknown")]
    failure_type: FailureType,
    /// transient (retry automatically) or persistent (needs a person)
    #[arg(long, default_value = "transient")]
    class: FailureClass,
    /// What failed: a playbook, a role, a Packer builder, …
    #[arg(long, value_parser = input::label)]
    component: Option<String>,
    /// A JSON object (playbook, task, host, …): JSON, `-` or `@FILE`
    #[arg(long, value_name = "JSON|-|@FILE")]
    details: Option<String>,
    /// The failing command's exit code
    #[arg(long, allow_negative_numbers = true)]
    exit_code: Option<i32>,
    /// Attempts allowed at this milestone before it needs a person [default: by state]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::Start(a) => {
            let t = a.target;
            let b = ctx.find(&t.reference).await?;
            let cmd = Command::Start { state: t.code, actor: ctx.actor.clone(), log: t.log, force: a.force };
            let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
            output::build_or_line(
                ctx.json,
                &b,
                format!("started {} of build {}, attempt {}", output::state_label(&b), b.number, b.attempt),
            )
        }
        Args::Complete(a) => {
            let t = a.target;
            let b = ctx.find(&t.reference).await?;
            let cmd = Command::Complete {
                state: t.code,
                actor: ctx.actor.clone(),
                exit_code: a.exit_code,
                log: t.log,
            };
            let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
            let text = if b.is_delivered() {
                format!("completed {} {}: build {} is delivered", t.code, b.catalog.name_of(t.code), b.number)
            } else {
                format!(
                    "completed {} ({}) of build {}; next: {}",
                    t.code,
                    b.catalog.name_of(t.code),
                    b.number,
                    output::state_label(&b)
                )
            };
            output::build_or_line(ctx.json, &b, text)
        }
        Args::Fail(a) => fail(a, ctx).await,
    }
}

async fn fail(a: FailArgs, ctx: &Ctx) -> Result<(), CliError> {
    let (error, details) = (a.error.as_deref().map(Source::of), a.details.as_deref().map(Source::of));
    if error == Some(Source::Stdin) && details == Some(Source::Stdin) {
        return Err(CliError::usage(
            "--error and --details cannot both read standard input; use @FILE for one",
        ));
    }
    // Read and check every input before touching the store: a bad flag changes nothing.
    let message = error.map(|s| s.read("the error message")).transpose()?.unwrap_or_default();
    let details = match details {
        Some(s) => details_object(&s.read("the details")?).map_err(|e| CliError::usage(e.to_string()))?,
        None => Default::default(),
    };
    let t = a.target;
    let b = ctx.find(&t.reference).await?;
    let max_attempts = a.max_attempts.unwrap_or_else(|| RetryPolicy::default_for(t.code).max_attempts);
    let failure = FailureInfo {
        failure_type: a.failure_type,
        class: a.class,
        component: a.component.map(|c| buildstate_core::clean_text(&c, MAX_NOTE_BYTES)),
        message,
        details,
        exit_code: a.exit_code,
    };
    let cmd = Command::Fail { state: t.code, actor: ctx.actor.clone(), failure, max_attempts, log: t.log };
    let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
    output::build_or_line(ctx.json, &b, failed_text(&b, max_attempts))
}

fn failed_text(b: &Build, max_attempts: u32) -> String {
    let head = format!(
        "build {} failed at {}, attempt {} of {max_attempts}",
        b.number,
        output::state_label(b),
        b.attempt
    );
    if b.needs_intervention {
        format!("{head}; it needs a person now (see `buildstate resume {}`)", b.number)
    } else {
        format!("{head}; `buildstate retry {}` to try again", b.number)
    }
}
