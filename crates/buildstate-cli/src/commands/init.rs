//! `init [--sample]`: create or migrate the store (opening it does both), say where it
//! is, and optionally load the sample data.

use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;
use crate::sample::{self, Loaded};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Load the sample catalog, and sample builds if the store has none (idempotent)
    #[arg(long)]
    sample: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    path: String,
    schema_version: u32,
    sample: Option<&'a Loaded>,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let loaded = if a.sample { Some(sample::load(ctx.store.as_ref(), &ctx.actor).await?) } else { None };
    let path = ctx.location.clone();
    if ctx.json {
        return output::json(&Report { path, schema_version: ctx.schema_version, sample: loaded.as_ref() });
    }
    output::line(format!("store: {path} (schema version {})", ctx.schema_version))?;
    match loaded {
        None => Ok(()),
        Some(l) if l.catalog_items_added == 0 && l.builds_added.is_empty() => {
            output::line("sample: already loaded; nothing added")
        }
        Some(l) => output::line(format!(
            "sample: added {} catalog entries and {} builds",
            l.catalog_items_added,
            l.builds_added.len()
        )),
    }
}
