//! The routes, one module per resource. Every handler takes the scope extractor its
//! route needs ([`crate::auth`]), and answers errors in one shape ([`crate::error`]).

mod body;
mod builds;
mod health;
mod records;
mod reports;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::error::ApiError;
use crate::{AppState, BODY_LIMIT};

/// Every route of the server over `state`'s store.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/builds", get(builds::list).post(builds::create))
        .route("/api/v1/builds/{reference}", get(builds::get))
        .route("/api/v1/builds/{reference}/transitions", post(builds::transition))
        .route("/api/v1/builds/{reference}/cancel", post(builds::cancel))
        .route("/api/v1/builds/{reference}/history", get(builds::history))
        .route("/api/v1/builds/{reference}/failures", get(records::failures))
        .route("/api/v1/builds/{reference}/failures/resolve", post(records::resolve))
        .route("/api/v1/builds/{reference}/artifacts", get(records::artifacts).post(records::add_artifact))
        .route(
            "/api/v1/builds/{reference}/metadata/{key}",
            put(records::set_meta).delete(records::delete_meta),
        )
        .route("/api/v1/builds/{reference}/lease/break", post(records::break_lease))
        .route("/api/v1/builds/{reference}/export", get(records::export))
        .route("/api/v1/import", post(records::import))
        .route("/api/v1/failures", get(records::all_failures))
        .route("/api/v1/leases", get(records::leases))
        .route("/api/v1/catalog/{kind}", get(records::catalog))
        .route("/api/v1/reports/{name}", get(reports::report))
        .fallback(|| async { ApiError::not_found("no such route").with_hint("the API is under /api/v1") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
