//! `serve [--listen ADDR] [--allow-anonymous-read]`: the HTTP API and the dashboard over
//! this store (`buildstate-server`), until SIGTERM or Ctrl-C; requests in flight are finished.

use std::net::SocketAddr;

use buildstate_server::deliver::SenderOptions;
use buildstate_server::{AppState, Options};

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on (port 0: any free port, printed)
    #[arg(long, default_value = "127.0.0.1:8080", env = "BUILDSTATE_LISTEN")]
    listen: SocketAddr,
    /// Let requests without a token read (never write)
    #[arg(long)]
    allow_anonymous_read: bool,
    /// Let pages from this origin call the API from a browser (repeat for more; never `*`)
    #[arg(long, value_parser = buildstate_server::cors::parse_origin)]
    cors_origin: Vec<String>,
    /// Shortens every webhook retry wait by this factor (0 < f ≤ 1): for tests only
    #[arg(long, hide = true, env = "BUILDSTATE_WEBHOOK_BACKOFF_SCALE", default_value_t = 1.0)]
    webhook_backoff_scale: f64,
    /// Where the attempt logs it serves are (the dashboard's full logs): the store's own
    /// logs directory unless runners were given another --logs-dir
    #[arg(long, value_name = "DIR")]
    logs_dir: Option<std::path::PathBuf>,
    /// Mark the dashboard's session cookie `Secure` (behind an https proxy that does
    /// not send `X-Forwarded-Proto`)
    #[arg(long)]
    secure_cookies: bool,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| {
        CliError::new(Exit::Unavailable, format!("cannot listen on {}: {e}", a.listen))
            .with_hint("another process may have the port; choose one with --listen HOST:PORT")
    })?;
    let addr =
        listener.local_addr().map_err(|e| CliError::internal(format!("the listening address: {e}")))?;
    let options = Options {
        allow_anonymous_read: a.allow_anonymous_read,
        rates: ctx.cost_rates.clone(),
        cors_origins: a.cors_origin,
        // Where `run` writes them by default: beside the store (`open::beside`).
        logs_dir: Some(a.logs_dir.unwrap_or_else(|| crate::open::beside(&ctx.db_path, "logs"))),
        secure_cookies: a.secure_cookies,
    };
    if !(a.webhook_backoff_scale > 0.0 && a.webhook_backoff_scale <= 1.0) {
        return Err(CliError::usage("BUILDSTATE_WEBHOOK_BACKOFF_SCALE must be above 0 and at most 1"));
    }
    let state = AppState::new(ctx.store.clone(), options);
    let events = std::sync::Arc::clone(&state.events);
    let router = buildstate_server::router(state);
    // One signal stops the server, the webhook sender and the open event streams
    // (dashboards), which end at the stop instead of holding it for its grace.
    let (stop, stopped) = tokio::sync::watch::channel(());
    let signal = async move {
        buildstate_server::shutdown_signal().await;
        events.close();
        let _ = stop.send(());
    };
    let sender_options = SenderOptions { backoff_scale: a.webhook_backoff_scale, ..SenderOptions::default() };
    let mut sender_stop = stopped.clone();
    let sender =
        tokio::spawn(buildstate_server::deliver::run(ctx.store.clone(), sender_options, async move {
            let _ = sender_stop.changed().await;
        }));
    // The address on stdout, for scripts that started it on port 0; the rest on stderr.
    output::line(format!("http://{addr}"))?;
    output::notice(format!("serving {} on http://{addr}; stop with Ctrl-C or SIGTERM", ctx.location));
    let served = buildstate_server::serve(listener, router, signal).await;
    sender.abort();
    served.map_err(|e| CliError::new(Exit::Unavailable, format!("the server stopped: {e}")))?;
    output::notice("stopped: every request in flight was answered");
    Ok(())
}
