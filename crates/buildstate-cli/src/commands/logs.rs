//! `logs REF [--state CODE] [--attempt N]`: print a stored attempt log.

use std::io::Write;

use buildstate_core::{EventKind, StateCode};

use crate::cli::Ctx;
use crate::exit::{CliError, io_error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// The milestone [default: the latest attempt's]
    #[arg(long, allow_negative_numbers = true)]
    state: Option<StateCode>,
    /// The attempt at that milestone [default: the latest]
    #[arg(long)]
    attempt: Option<u32>,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(&a.reference).await?;
    let history = ctx.store.history(b.id).await?;
    let found = history.iter().rev().find(|e| {
        e.kind == EventKind::Started
            && e.log.is_some()
            && a.state.is_none_or(|s| s == e.state)
            && a.attempt.is_none_or(|n| n == e.attempt)
    });
    let Some(event) = found else {
        let which = match (a.state, a.attempt) {
            (Some(s), Some(n)) => format!(" for attempt {n} at state {s}"),
            (Some(s), None) => format!(" at state {s}"),
            (None, Some(n)) => format!(" for attempt {n}"),
            (None, None) => String::new(),
        };
        return Err(CliError::not_found(format!(
            "build {} has no recorded log{which} in {}",
            b.number, ctx.location
        ))
        .with_hint(format!(
            "logs are recorded by `buildstate run` and `buildstate exec`; see `buildstate history {}`",
            b.number
        )));
    };
    let path = event.log.clone().unwrap_or_default();
    let bytes = std::fs::read(&path).map_err(|e| {
        CliError::not_found(format!(
            "the log of attempt {} at state {} of build {} is gone: {path}: {e}",
            event.attempt, event.state, b.number
        ))
    })?;
    let mut out = std::io::stdout().lock();
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(io_error("write the log", &e)),
        _ => Ok(()),
    }
}
