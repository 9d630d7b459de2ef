//! `buildstate`: parse, run, map the outcome to an exit code (see `exit.rs`).

mod catalog_hint;
mod ci_env;
mod cli;
mod commands;
mod config;
mod exit;
mod input;
mod open;
mod output;
mod progress;
mod remote;
mod sample;
mod signals;

use std::process::ExitCode;

fn main() -> ExitCode {
    let (cli, settings) = match cli::parse() {
        Ok(parsed) => parsed,
        Err(exit) => return exit.into(),
    };
    output::init(settings.color.value, settings.quiet);
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| exit::CliError::internal(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(cli::run(cli, settings)));
    match outcome {
        Ok(exit) => exit.into(),
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            e.report();
            e.exit.into()
        }
    }
}
