//! `exec REF CODE -- CMD ARGS…`: track-only mode. Runs one command as one attempt of one
//! milestone and passes its stdout, stderr and exit code through unchanged.

use std::time::Duration;

use buildstate_core::StateCode;
use buildstate_runner::dispatch::{RunError, TrackOptions, track};
use buildstate_runner::executor::StepEnd;

use super::run::{RunnerArgs, parse_duration};
use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::signals;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// The milestone this command is (the build must be at it)
    #[arg(allow_negative_numbers = true)]
    code: StateCode,
    /// CODE is later than the build's milestone: record every milestone before it as
    /// skipped ("not tracked by this pipeline") first
    #[arg(long)]
    skip_to_here: bool,
    /// Kill the command (and its children) after this long; recorded as a timeout
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    timeout: Option<Duration>,
    #[command(flatten)]
    runner: RunnerArgs,
    /// The command and its arguments, after `--`
    #[arg(required = true, num_args = 1.., value_name = "CMD")]
    command: Vec<String>,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    let mut build = ctx.find(&a.reference).await?;
    // Before anything is recorded: a logs directory that cannot be written is the
    // caller's setup, not a failure of this milestone.
    let logs_dir = a.runner.usable_logs_dir(ctx)?;
    if a.skip_to_here {
        build = super::state::skip_to_here(ctx, build, a.code).await?;
    }
    let opts = TrackOptions {
        actor: ctx.actor.clone(),
        lease_ttl: a.runner.lease_ttl,
        logs_dir,
        grace: a.runner.grace,
        timeout: a.timeout,
        workdir: std::env::current_dir()
            .map_err(|e| CliError::internal(format!("cannot read the current directory: {e}")))?,
        store_location: ctx.step_db.clone(),
    };
    let stop = signals::stop_on_signals();
    let outcome = match track(ctx.store.clone(), &build, a.code, a.command, &opts, stop).await {
        Ok(o) => o,
        Err(RunError::Store(e)) => return Err(super::state::with_skip_hint(&build, e)),
        Err(e) => return Err(e.into()),
    };
    // The exit code of the command, as a shell would report it.
    let code = match outcome.result.end {
        StepEnd::Exited(c) => u8::try_from(c).unwrap_or(1),
        StepEnd::Signaled(s) | StepEnd::Interrupted(s) => u8::try_from(128 + s).unwrap_or(1),
        StepEnd::TimedOut => 124,
        StepEnd::SpawnFailed(why) => {
            eprintln!("buildstate exec: {why}");
            127
        }
    };
    Ok(Exit::Passthrough(code))
}
