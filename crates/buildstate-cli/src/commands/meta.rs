//! `meta set|get|list`: key/value metadata of a build.

use buildstate_core::{Command, MetaKey, MetaValue};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Set one entry (allowed in every status)
    Set {
        reference: String,
        #[arg(value_parser = MetaKey::new)]
        key: MetaKey,
        value: String,
    },
    /// Print one value (exit 3 if the key is not set)
    Get {
        reference: String,
        #[arg(value_parser = MetaKey::new)]
        key: MetaKey,
    },
    /// List every entry
    List { reference: String },
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::Set { reference, key, value } => {
            let value = MetaValue::new(&key, &value).map_err(|e| CliError::usage(e.to_string()))?;
            let b = ctx.find(&reference).await?;
            let cmd = Command::SetMeta { key: key.clone(), value: Some(value) };
            let b = ctx.store.apply(b.id, &cmd, ctx.guard).await?.build;
            output::build_or_line(ctx.json, &b, format!("set {key} on build {}", b.number))
        }
        Args::Get { reference, key } => {
            let b = ctx.find(&reference).await?;
            let value = b.metadata.get(&key).ok_or_else(|| {
                CliError::not_found(format!(
                    "build {} has no metadata key `{key}` in {}",
                    b.number, ctx.location
                ))
                .with_hint(format!("see `buildstate meta list {}`", b.number))
            })?;
            if ctx.json { output::json(value) } else { output::line(value.as_str()) }
        }
        Args::List { reference } => {
            let b = ctx.find(&reference).await?;
            if ctx.json {
                return output::json(&b.metadata);
            }
            let mut t = output::table(&["KEY", "VALUE"]);
            for (k, v) in &b.metadata {
                t.add_row(vec![k.to_string(), output::cell(v.as_str(), 100)]);
            }
            output::print_table(&t)
        }
    }
}
