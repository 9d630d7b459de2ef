//! `rewind REF --to CODE --reason TEXT`: the only way back, and the only way to reopen a
//! delivered or cancelled build. Everything above `CODE` must be done again.

use buildstate_core::{Command, StateCode};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// The earlier milestone to go back to
    #[arg(long, allow_negative_numbers = true, value_name = "CODE")]
    to: StateCode,
    /// Why (required, recorded in history)
    #[arg(long)]
    reason: String,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(&a.reference).await?;
    let from = output::state_label(&b);
    let cmd = Command::Rewind { to: a.to, actor: ctx.actor.clone(), reason: a.reason };
    let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
    output::build_or_line(
        ctx.json,
        &b,
        format!("rewound build {} from {from} to {}; it is {}", b.number, output::state_label(&b), b.status),
    )
}
