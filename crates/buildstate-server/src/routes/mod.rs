//! The routes, one module per resource, declared once in [`routes`]: the router is built
//! from that table, and so are the checks that walk every route (and, later, the API
//! document). Every handler takes the scope extractor its route needs
//! ([`crate::auth`]), and answers errors in one shape ([`crate::error`]).

mod admin;
mod body;
mod builds;
mod health;
mod metrics;
mod records;
mod reports;
mod runner;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use buildstate_core::Scope;

use crate::error::ApiError;
use crate::{AppState, BODY_LIMIT};

/// One method on one path.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// As axum writes it: `/api/v1/builds/{reference}`.
    pub path: &'static str,
    /// What the caller's token needs; `None`: anyone (health checks).
    pub scope: Option<Scope>,
    pub summary: &'static str,
    handler: MethodRouter<AppState>,
}

fn route(
    method: Method,
    path: &'static str,
    scope: Option<Scope>,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> Route {
    Route { method, path, scope, summary, handler }
}

/// Every route of the server.
pub fn routes() -> Vec<Route> {
    use Method as M;
    use Scope::{Read as R, Write as W};
    vec![
        route(M::GET, "/healthz", None, "the process answers", get(health::healthz)),
        route(M::GET, "/readyz", None, "the store answers", get(health::readyz)),
        route(
            M::GET,
            "/metrics",
            Some(R),
            "the store's figures and the server's requests, in the Prometheus text format",
            get(metrics::metrics),
        ),
        route(M::GET, "/api/v1/builds", Some(R), "builds, newest first, a page at a time", get(builds::list)),
        route(M::POST, "/api/v1/builds", Some(W), "create a build", post(builds::create)),
        route(M::GET, "/api/v1/builds/{reference}", Some(R), "one build", get(builds::get)),
        route(
            M::POST,
            "/api/v1/builds/{reference}/transitions",
            Some(W),
            "start, complete, fail, skip, retry or rewind",
            post(builds::transition),
        ),
        route(M::POST, "/api/v1/builds/{reference}/cancel", Some(W), "cancel a build", post(builds::cancel)),
        route(
            M::GET,
            "/api/v1/builds/{reference}/history",
            Some(R),
            "a build's history, oldest first",
            get(builds::history),
        ),
        route(
            M::GET,
            "/api/v1/builds/{reference}/attempts",
            Some(R),
            "every attempt at every milestone, oldest first",
            get(builds::attempts),
        ),
        route(
            M::GET,
            "/api/v1/builds/{reference}/failures",
            Some(R),
            "a build's failure records",
            get(records::failures),
        ),
        route(
            M::POST,
            "/api/v1/builds/{reference}/failures/resolve",
            Some(W),
            "resolve one failure or all",
            post(records::resolve),
        ),
        route(
            M::GET,
            "/api/v1/builds/{reference}/artifacts",
            Some(R),
            "a build's artifacts",
            get(records::artifacts),
        ),
        route(
            M::POST,
            "/api/v1/builds/{reference}/artifacts",
            Some(W),
            "record an artifact",
            post(records::add_artifact),
        ),
        route(
            M::PUT,
            "/api/v1/builds/{reference}/metadata/{key}",
            Some(W),
            "set a metadata value",
            put(records::set_meta),
        ),
        route(
            M::DELETE,
            "/api/v1/builds/{reference}/metadata/{key}",
            Some(W),
            "remove a metadata value",
            delete(records::delete_meta),
        ),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease/break",
            Some(W),
            "release a build's lease",
            post(records::break_lease),
        ),
        route(
            M::GET,
            "/api/v1/builds/{reference}/export",
            Some(R),
            "a build as one document",
            get(records::export),
        ),
        route(M::POST, "/api/v1/import", Some(Scope::Admin), "store a build document", post(records::import)),
        route(
            M::GET,
            "/api/v1/failures",
            Some(R),
            "failure records across builds",
            get(records::all_failures),
        ),
        route(M::GET, "/api/v1/leases", Some(R), "held leases (never their tokens)", get(records::leases)),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease",
            Some(W),
            "acquire (or take over) a build's lease; answers its token, to this caller only",
            post(runner::acquire),
        ),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease/renew",
            Some(W),
            "the holder's heartbeat",
            post(runner::renew),
        ),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease/release",
            Some(W),
            "the holder lets the build go",
            post(runner::release),
        ),
        route(M::POST, "/api/v1/workers/beat", Some(W), "a worker's heartbeat", post(runner::beat)),
        route(M::POST, "/api/v1/workers/exited", Some(W), "a worker stops", post(runner::exited)),
        route(M::GET, "/api/v1/workers", Some(R), "workers seen lately", get(runner::workers)),
        route(
            M::POST,
            "/api/v1/builds/{reference}/prune",
            Some(Scope::Admin),
            "remove a finished build the rule names",
            post(admin::prune),
        ),
        route(
            M::GET,
            "/api/v1/tokens",
            Some(Scope::Admin),
            "every token (never a secret)",
            get(admin::tokens),
        ),
        route(
            M::POST,
            "/api/v1/tokens",
            Some(Scope::Admin),
            "store a token the client issued (its secret's hash only)",
            post(admin::create_token),
        ),
        route(M::GET, "/api/v1/tokens/{id}", Some(Scope::Admin), "one token by id", get(admin::token)),
        route(
            M::POST,
            "/api/v1/tokens/{reference}/revoke",
            Some(Scope::Admin),
            "revoke a token by name or id",
            post(admin::revoke_token),
        ),
        route(
            M::GET,
            "/api/v1/catalog/{kind}",
            Some(R),
            "platforms, os-versions or image-types",
            get(records::catalog),
        ),
        route(M::POST, "/api/v1/catalog/{kind}", Some(W), "add a catalog item", post(admin::add_item)),
        route(M::GET, "/api/v1/catalog/{kind}/{name}", Some(R), "one catalog item", get(admin::item)),
        route(
            M::DELETE,
            "/api/v1/catalog/{kind}/{name}",
            Some(Scope::Admin),
            "remove an unused catalog item",
            delete(admin::remove_item),
        ),
        route(
            M::GET,
            "/api/v1/reports/{name}",
            Some(R),
            "a report of `buildstate report`",
            get(reports::report),
        ),
    ]
}

/// Every route of the server over `state`'s store.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for r in routes() {
        // Methods of one path are merged into one method router.
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async { ApiError::not_found("no such route").with_hint("the API is under /api/v1") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::cors::layer))
        // Outermost, so that every answer is counted (CORS preflights, 413s) and timed.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::metrics::http::layer))
        .with_state(state)
}
