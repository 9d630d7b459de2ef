//! `retry REF`: re-open a failed build at the milestone that failed.

use buildstate_core::Command;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
    /// Why (recorded in history)
    #[arg(long)]
    reason: Option<String>,
    /// Override exhausted retries or a persistent failure (recorded as an override)
    #[arg(long)]
    force: bool,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(&a.reference).await?;
    let cmd = Command::Retry { actor: ctx.actor.clone(), reason: a.reason, force: a.force };
    let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
    output::build_or_line(
        ctx.json,
        &b,
        format!(
            "build {} is open again at {}; run it with `buildstate state start {} {}`",
            b.number,
            output::state_label(&b),
            b.number,
            b.state
        ),
    )
}
