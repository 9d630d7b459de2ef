//! `history REF`: every event of a build, oldest first.

use buildstate_core::{Build, HistoryEvent};
use comfy_table::Table;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either
    reference: String,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let b = ctx.find(&a.reference).await?;
    let events = ctx.store.history(b.id).await?;
    if ctx.json { output::json(&events) } else { output::print_table(&table(&b, &events)) }
}

pub fn table(b: &Build, events: &[HistoryEvent]) -> Table {
    let mut t =
        output::table(&["SEQ", "AT", "EVENT", "STATE", "ATTEMPT", "ACTOR", "DURATION", "EXIT", "MESSAGE"]);
    for e in events {
        let state = match e.from_state {
            Some(from) => format!("{from} → {} ({})", e.state, b.catalog.name_of(e.state)),
            None => format!("{} ({})", e.state, b.catalog.name_of(e.state)),
        };
        let event = if e.forced { format!("{} (forced)", e.kind) } else { e.kind.to_string() };
        t.add_row(vec![
            e.seq.to_string(),
            output::time(e.at),
            event,
            state,
            if e.attempt == 0 { "-".to_owned() } else { e.attempt.to_string() },
            output::cell(&e.actor, 20),
            output::opt_duration(e.duration_ms),
            e.exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            output::cell(e.message.as_deref().unwrap_or(""), 60),
        ]);
    }
    t
}
