//! `failure list|resolve`: why builds failed, and what was done about it.

use std::collections::HashMap;

use buildstate_core::{BuildId, FailureRecord, FailureType, StateCode};
use buildstate_store::FailureFilter;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// List failure records, newest first
    List {
        /// Only failures of this build
        #[arg(long = "build", value_name = "REF")]
        reference: Option<String>,
        /// Only failures not yet resolved
        #[arg(long)]
        unresolved: bool,
        #[arg(long, allow_negative_numbers = true)]
        state: Option<StateCode>,
        #[arg(long = "type")]
        failure_type: Option<FailureType>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Mark one failure (or all unresolved failures) of a build resolved
    Resolve {
        /// Build id, build number, or a unique prefix of either
        reference: String,
        /// The failure number within the build [default: every unresolved one]
        #[arg(long = "failure", value_name = "N")]
        number: Option<u32>,
        /// What was done (recorded)
        #[arg(long)]
        notes: String,
    },
}

/// A failure record with the build number people know it by.
#[derive(Serialize)]
struct Row<'a> {
    build: String,
    #[serde(flatten)]
    record: &'a FailureRecord,
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::List { reference, unresolved, state, failure_type, limit } => {
            let build = match reference {
                Some(r) => Some(ctx.find(&r).await?.id),
                None => None,
            };
            let filter = FailureFilter { build, unresolved_only: unresolved, state, failure_type, limit };
            let records = ctx.store.failures(&filter).await?;
            print(ctx, &records).await
        }
        Args::Resolve { reference, number, notes } => {
            if notes.trim().is_empty() {
                return Err(CliError::usage("--notes must say what was done"));
            }
            let b = ctx.find(&reference).await?;
            let changed = ctx.store.resolve_failures(b.id, number, &notes, ctx.guard).await?;
            if ctx.json {
                return print(ctx, &changed).await;
            }
            match changed.len() {
                0 => output::line(format!("build {} has no unresolved failures; nothing changed", b.number)),
                n => output::line(format!("resolved {n} failure(s) of build {}", b.number)),
            }
        }
    }
}

async fn print(ctx: &Ctx, records: &[FailureRecord]) -> Result<(), CliError> {
    // Records carry the build id; people know builds by number.
    let mut numbers: HashMap<BuildId, String> = HashMap::new();
    for r in records {
        if let std::collections::hash_map::Entry::Vacant(slot) = numbers.entry(r.build_id) {
            slot.insert(ctx.store.build(r.build_id).await?.number.to_string());
        }
    }
    let number = |id: &BuildId| numbers.get(id).cloned().unwrap_or_else(|| id.to_string());
    if ctx.json {
        let rows: Vec<Row> = records.iter().map(|r| Row { build: number(&r.build_id), record: r }).collect();
        return output::json(&rows);
    }
    let mut t =
        output::table(&["BUILD", "NO", "STATE", "ATTEMPT", "TYPE", "CLASS", "AT", "RESOLVED", "MESSAGE"]);
    for r in records {
        t.add_row(vec![
            number(&r.build_id),
            r.number.to_string(),
            r.state.to_string(),
            r.attempt.to_string(),
            r.info.failure_type.to_string(),
            r.info.class.to_string(),
            output::time(r.at),
            if r.resolved { "yes".to_owned() } else { "no".to_owned() },
            output::cell(&r.info.message, 60),
        ]);
    }
    output::print_table(&t)
}
