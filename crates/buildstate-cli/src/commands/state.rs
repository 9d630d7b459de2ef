//! `state start|complete|fail|skip REF CODE`: record what happened at a milestone.
//!
//! Like every manual write (`retry`, `rewind`, `build cancel`, `meta set`), these carry no
//! lease token: while a runner holds an unexpired lease on the build the store refuses
//! them (exit 5, naming the runner), because a person moving a build under a running
//! pipeline would race it. `buildstate lease break` frees a build whose runner is gone.

use buildstate_core::{
    Build, BuildStatus, Command, FailureClass, FailureInfo, FailureType, MAX_NOTE_BYTES, Rejection,
    StateCode, details_object,
};
use buildstate_store::StoreError;

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
    /// The current milestone is not run here: record it as skipped and advance
    Skip(SkipArgs),
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
    /// CODE is later than the build's milestone: record every milestone before it as
    /// skipped ("not tracked by this pipeline") first
    #[arg(long)]
    skip_to_here: bool,
}

#[derive(Debug, clap::Args)]
pub struct SkipArgs {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// The milestone's state code (the build's current one)
    #[arg(allow_negative_numbers = true)]
    code: StateCode,
    /// Why it is not run, as recorded in history
    #[arg(long, value_parser = input::label)]
    reason: String,
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
            let b = found(ctx, &t).await?;
            let cmd = Command::Start { state: t.code, actor: ctx.actor.clone(), log: t.log, force: a.force };
            let b = ctx.store.apply(b.id, &cmd, ctx.guard).await.map_err(|e| with_skip_hint(&b, e))?.build;
            output::build_or_line(
                ctx.json,
                &b,
                format!("started {} of build {}, attempt {}", output::state_label(&b), b.number, b.attempt),
            )
        }
        Args::Complete(a) => {
            let t = a.target;
            let b = found(ctx, &t).await?;
            let cmd = Command::Complete {
                state: t.code,
                actor: ctx.actor.clone(),
                exit_code: a.exit_code,
                log: t.log,
            };
            let b = ctx.store.apply(b.id, &cmd, ctx.guard).await.map_err(|e| with_skip_hint(&b, e))?.build;
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
        Args::Skip(a) => {
            if a.reason.is_empty() {
                return Err(CliError::usage("a reason is required to skip a milestone: pass --reason \"…\""));
            }
            let b = ctx.find(&a.reference).await?;
            let cmd = Command::Skip { state: a.code, actor: ctx.actor.clone(), reason: a.reason };
            let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
            let text = format!(
                "skipped {} ({}) of build {}; next: {}",
                a.code,
                b.catalog.name_of(a.code),
                b.number,
                output::state_label(&b)
            );
            output::build_or_line(ctx.json, &b, text)
        }
    }
}

/// The build `t` names, moved up to `t.code` first when `--skip-to-here` asks for it.
async fn found(ctx: &Ctx, t: &Target) -> Result<Build, CliError> {
    let b = ctx.find(&t.reference).await?;
    if t.skip_to_here { skip_to_here(ctx, b, t.code).await } else { Ok(b) }
}

/// What `--skip-to-here` records for the milestones it passes over.
pub const NOT_TRACKED: &str = "not tracked by this pipeline";

/// The milestones `--skip-to-here` records as skipped on the way to `target`: the
/// current one and every one after it below `target`. A new build's 0 is not among
/// them: the rules complete it implicitly when its first milestone is acted on.
fn to_skip(b: &Build, target: StateCode) -> Vec<StateCode> {
    if !b.catalog.contains(target) || b.status.is_terminal() {
        // The command itself is refused, with the reason; nothing is skipped for it.
        return Vec::new();
    }
    let fresh = b.state == StateCode::INITIAL && b.status == BuildStatus::Pending;
    b.catalog.codes().filter(|&c| c >= b.state && c < target && !(fresh && c == StateCode::INITIAL)).collect()
}

/// `--skip-to-here`: records every milestone from the build's current one up to (not
/// including) `target` as skipped, so that the command can act on `target`.
///
/// One `Skip` per milestone, each its own transition through `Store::apply`, rather than
/// one compound command in a single transaction: the rules, the history (one `skipped`
/// event per milestone, as the runner records milestones without a step), replay and
/// every backend stay exactly as they are. Each write is guarded by the version just
/// read, so should anyone else move the build meanwhile the loop stops with a conflict
/// (exit 5) instead of skipping past what they did. Milestones already skipped by then
/// stay skipped — they were not tracked anyway — and running the command again goes on
/// from there.
pub async fn skip_to_here(ctx: &Ctx, mut b: Build, target: StateCode) -> Result<Build, CliError> {
    for state in to_skip(&b, target) {
        let cmd = Command::Skip { state, actor: ctx.actor.clone(), reason: NOT_TRACKED.to_owned() };
        b = ctx.store.apply(b.id, &cmd, ctx.guard.and_version(b.version)).await?.build;
    }
    Ok(b)
}

/// A command at a milestone later than the build's is refused by the rules (exit 4);
/// the hint says how to record the milestones in between when this pipeline does not
/// track them.
pub fn with_skip_hint(b: &Build, e: StoreError) -> CliError {
    let StoreError::Rejected(Rejection::Ahead { requested, .. }) = &e else {
        return e.into();
    };
    let codes: Vec<String> = to_skip(b, *requested).iter().map(|c| c.to_string()).collect();
    let hint = format!(
        "if this pipeline does not track {}, pass --skip-to-here to record {} as skipped (\"{NOT_TRACKED}\") first",
        codes.join(", "),
        if codes.len() == 1 { "it" } else { "them" }
    );
    CliError::from(e).with_hint(hint)
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
    let b = found(ctx, &t).await?;
    let max_attempts = a.max_attempts.unwrap_or_else(|| {
        buildstate_runner::pipeline::RetryDefaults::installed().policy_for(t.code).max_attempts
    });
    let failure = FailureInfo {
        failure_type: a.failure_type,
        class: a.class,
        component: a.component.map(|c| buildstate_core::clean_text(&c, MAX_NOTE_BYTES)),
        message,
        details,
        exit_code: a.exit_code,
    };
    let cmd = Command::Fail { state: t.code, actor: ctx.actor.clone(), failure, max_attempts, log: t.log };
    let b = ctx.store.apply(b.id, &cmd, ctx.guard).await.map_err(|e| with_skip_hint(&b, e))?.build;
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
