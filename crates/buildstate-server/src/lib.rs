//! `buildstate serve`: the HTTP API over any store (`Arc<dyn Store>`), so that CI
//! workers in every cloud record transitions with a token instead of database
//! credentials, and a platform team sees every build without a shell on the machine
//! that holds the store.
//!
//! - [`router`] builds the routes (`/healthz`, `/readyz`, `/api/v1/…`) over a store;
//!   every rule is the store engine's, so the API refuses exactly what the CLI refuses.
//! - [`auth`]: bearer tokens (`buildstate token create`), checked by one lookup and one
//!   constant-time comparison; each route names the scope it needs.
//! - [`error`]: one JSON shape for every error, `{"error": {"code", "message", "hint"}}`;
//!   a cause is logged, never sent.
//! - [`deliver`]: the webhook sender, which empties the store's outbox.
//! - [`dashboard`]: the pages (`/`, `/builds/{ref}`, …), signed in with a token; and
//!   [`events`]: `GET /api/v1/events`, builds' changes as server-sent events.
//! - [`metrics`]: `GET /metrics`, the store's figures and the server's requests in the
//!   Prometheus text format.
//! - [`serve`] runs it until SIGTERM or SIGINT, then stops accepting and finishes the
//!   requests in flight; a client gets [`HEADER_TIMEOUT`] to send its headers, and at
//!   most [`MAX_CONNECTIONS`] are open.

pub mod auth;
pub mod cors;
pub mod dashboard;
pub mod deliver;
pub mod error;
pub mod events;
pub mod limit;
pub mod metrics;
pub mod openapi;
mod routes;
mod serve;

use std::sync::Arc;

use buildstate_store::Store;

pub use routes::{Route, router, routes};
pub use serve::{GRACE, HEADER_TIMEOUT, MAX_CONNECTIONS, serve};

/// Largest request body accepted (413 above it): a build document with a long history
/// fits many times over; nothing a client sends needs more.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Largest build document `POST /api/v1/import` takes: as large as a client reads an
/// export (`buildstate-client`'s answer bound).
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// How the server answers.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Reads (the `read` scope) without a token. Off unless asked for.
    pub allow_anonymous_read: bool,
    /// Hourly rates per platform for the `cost` and `time-saved` reports (the config
    /// file's `[cost]`).
    pub rates: std::collections::BTreeMap<String, f64>,
    /// Origins whose pages may call the API from a browser ([`cors`]); none by default.
    pub cors_origins: Vec<String>,
    /// The store's attempt logs (`<store>.logs`, where the runner writes them): the
    /// only directory `GET …/attempts/{n}/log` reads from. `None`: no log is served.
    pub logs_dir: Option<std::path::PathBuf>,
    /// The dashboard's session cookie says `Secure` even when no proxy says the request
    /// came over https.
    pub secure_cookies: bool,
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub options: Options,
    /// Refused tokens per client address ([`limit`]).
    pub failed_sign_ins: Arc<limit::FailedSignIns>,
    /// Requests answered, for `/metrics` ([`metrics::http`]).
    pub http: Arc<metrics::HttpMetrics>,
    /// The dashboard's signed-in sessions ([`dashboard::session`]).
    pub sessions: Arc<dashboard::session::Sessions>,
    /// Builds' changes for the events stream ([`events`]).
    pub events: Arc<events::Events>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, options: Options) -> Self {
        let events = events::Events::new(Arc::clone(&store));
        AppState {
            store,
            options,
            failed_sign_ins: Arc::default(),
            http: Arc::default(),
            sessions: Arc::default(),
            events,
        }
    }
}

/// Resolves on SIGTERM (a service manager stopping the server) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, only Ctrl-C stops it.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests;
