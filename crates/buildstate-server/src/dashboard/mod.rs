//! The dashboard: server-rendered HTML pages over the store, served by the same binary
//! with their assets embedded (no node toolchain to build it).
//!
//! - [`matrix`] (`/`), [`build`] (`/builds/{ref}`), [`attention`], [`running`],
//!   [`reports`]: one module per view; [`charts`] draws their SVG; [`html`] escapes every
//!   value and frames the pages (a strict Content-Security-Policy: scripts only from
//!   `/assets/`, no inline script or style).
//! - [`session`]: sign-in with a token makes an in-memory session (a cookie), and every
//!   POST is checked for CSRF; [`signin`] and [`actions`] (retry, rewind, cancel) use it.
//! - Live updates: `assets/live.js` listens to `GET /api/v1/events` ([`crate::events`])
//!   and refreshes the page's `<main>` with htmx when a build changes.

pub mod actions;
pub mod attention;
pub mod build;
pub mod charts;
pub mod html;
pub mod matrix;
pub mod reports;
pub mod running;
pub mod session;
pub mod signin;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AppState;

/// htmx 2.0.11 (npm `htmx.org`, BSD Zero-Clause: `assets/htmx-LICENSE`).
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");
const LIVE: &str = include_str!("../../assets/live.js");
const STYLE: &str = include_str!("../../assets/style.css");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Embedded in the binary: the same for as long as this server runs.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    resp
}

/// The pages and their assets (the API's routes are [`crate::routes`]).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(matrix::show))
        .route("/builds/{reference}", get(build::show))
        .route("/builds/{reference}/retry", post(actions::retry))
        .route("/builds/{reference}/rewind", post(actions::rewind))
        .route("/builds/{reference}/cancel", post(actions::cancel))
        .route("/attention", get(attention::show))
        .route("/running", get(running::show))
        .route("/reports", get(reports::show))
        .route("/signin", get(signin::show).post(signin::sign_in))
        .route("/signout", post(signin::sign_out))
        .route("/assets/htmx.min.js", get(|| async { asset(HTMX, "text/javascript; charset=utf-8") }))
        .route("/assets/live.js", get(|| async { asset(LIVE, "text/javascript; charset=utf-8") }))
        .route("/assets/style.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/assets/favicon.svg", get(|| async { asset(FAVICON, "image/svg+xml") }))
        .route("/favicon.ico", get(|| async { asset(FAVICON, "image/svg+xml") }))
}
