//! The routes, one module per resource, declared once in [`routes`]: the router is built
//! from that table, and so are the checks that walk every route (and, later, the API
//! document). Every handler takes the scope extractor its route needs
//! ([`crate::auth`]), and answers errors in one shape ([`crate::error`]).

mod admin;
pub(crate) mod body;
mod builds;
mod health;
pub(crate) mod logs;
mod metrics;
mod records;
mod reports;
mod runner;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use buildstate_core::Scope;

use axum::http::StatusCode;
use buildstate_core::{AddedWebhook, Delivery, NewWebhook, TokenRecord, WebhookRecord, WorkerRecord};
use buildstate_core::{Artifact, Build, BuildDocument, CatalogItem, FailureRecord, HistoryEvent, Lease};
use buildstate_store::report::Report;
use buildstate_store::wire::Applied;
use schemars::JsonSchema;

pub(crate) use builds::LEASE_HEADER;

use crate::error::ApiError;
use crate::openapi::{self, Api};
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
    /// What it takes and answers, for the API document ([`crate::openapi`]).
    pub api: Api,
    handler: MethodRouter<AppState>,
}

impl Route {
    /// Takes a JSON body of `T`.
    fn takes<T: JsonSchema>(self) -> Route {
        Route { api: Api { body: Some(openapi::schema::<T>), ..self.api }, ..self }
    }

    /// Takes the query parameters of the fields of `T`.
    fn query<T: JsonSchema>(self) -> Route {
        Route { api: Api { query: Some(openapi::inline::<T>), ..self.api }, ..self }
    }

    /// Answers `status` with a JSON `T`.
    fn answers<T: JsonSchema>(self, status: StatusCode) -> Route {
        Route { api: Api { status: status.as_u16(), answer: Some(openapi::schema::<T>), ..self.api }, ..self }
    }

    /// Answers `status` with plain text (`/metrics`, attempt logs).
    fn text(self, status: StatusCode) -> Route {
        Route {
            api: Api { status: status.as_u16(), answer: None, media: Some("text/plain"), ..self.api },
            ..self
        }
    }

    /// Answers `status` with a stream of server-sent events (`/api/v1/events`).
    fn event_stream(self, status: StatusCode) -> Route {
        Route {
            api: Api { status: status.as_u16(), answer: None, media: Some("text/event-stream"), ..self.api },
            ..self
        }
    }

    /// Answers `status` with no body.
    fn empty(self, status: StatusCode) -> Route {
        Route { api: Api { status: status.as_u16(), answer: None, ..self.api }, ..self }
    }

    /// Takes `If-Match` and the lease token header ([`builds::guard`]).
    fn guarded(self) -> Route {
        Route { api: Api { guarded: true, ..self.api }, ..self }
    }
}

fn route(
    method: Method,
    path: &'static str,
    scope: Option<Scope>,
    summary: &'static str,
    handler: MethodRouter<AppState>,
) -> Route {
    Route { method, path, scope, summary, api: Api::default(), handler }
}

/// Every route of the server.
pub fn routes() -> Vec<Route> {
    use Method as M;
    use Scope::{Admin as A, Read as R, Write as W};
    use StatusCode as S;
    vec![
        route(M::GET, "/healthz", None, "the process answers", get(health::healthz))
            .answers::<health::Status>(S::OK),
        route(M::GET, "/readyz", None, "the store answers", get(health::readyz))
            .answers::<health::Status>(S::OK),
        route(
            M::GET,
            "/metrics",
            Some(R),
            "the store's figures and the server's requests, in the Prometheus text format",
            get(metrics::metrics),
        )
        .text(S::OK),
        route(M::GET, "/api/v1/openapi.json", None, "this document", get(openapi::serve))
            .answers::<serde_json::Map<String, serde_json::Value>>(S::OK),
        route(M::GET, "/api/v1/builds", Some(R), "builds, newest first, a page at a time", get(builds::list))
            .query::<builds::ListQuery>()
            .answers::<builds::Page>(S::OK),
        route(M::POST, "/api/v1/builds", Some(W), "create a build", post(builds::create))
            .takes::<builds::CreateBody>()
            .answers::<Build>(S::CREATED),
        route(M::GET, "/api/v1/builds/{reference}", Some(R), "one build", get(builds::get))
            .answers::<Build>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/transitions",
            Some(W),
            "start, complete, fail, skip, retry or rewind",
            post(builds::transition),
        )
        .takes::<builds::TransitionBody>()
        .guarded()
        .answers::<Applied>(S::OK),
        route(M::POST, "/api/v1/builds/{reference}/cancel", Some(W), "cancel a build", post(builds::cancel))
            .takes::<builds::CancelBody>()
            .guarded()
            .answers::<Applied>(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/history",
            Some(R),
            "a build's history, oldest first",
            get(builds::history),
        )
        .answers::<Vec<HistoryEvent>>(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/attempts",
            Some(R),
            "every attempt at every milestone, oldest first",
            get(builds::attempts),
        )
        .answers::<Vec<buildstate_core::Attempt>>(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/resume",
            Some(R),
            "what to run next and why, as `buildstate resume --json` answers",
            get(builds::resume),
        )
        .answers::<buildstate_core::ResumePlan>(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/attempts/{n}/log",
            Some(R),
            "the output of the build's nth attempt (1-based, as …/attempts lists them), streamed",
            get(logs::log),
        )
        .text(S::OK),
        route(
            M::GET,
            "/api/v1/events",
            Some(R),
            "builds' changes as server-sent events (`build`: id, number, state, status, version); ends after `timeout` seconds",
            get(crate::events::events),
        )
        .query::<crate::events::EventsQuery>()
        .event_stream(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/failures",
            Some(R),
            "a build's failure records",
            get(records::failures),
        )
        .query::<records::FailureQuery>()
        .answers::<Vec<FailureRecord>>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/failures/resolve",
            Some(W),
            "resolve one failure or all",
            post(records::resolve),
        )
        .takes::<records::ResolveBody>()
        .guarded()
        .answers::<Vec<FailureRecord>>(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/artifacts",
            Some(R),
            "a build's artifacts",
            get(records::artifacts),
        )
        .answers::<Vec<Artifact>>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/artifacts",
            Some(W),
            "record an artifact",
            post(records::add_artifact),
        )
        .takes::<records::ArtifactBody>()
        .guarded()
        .answers::<Vec<Artifact>>(S::CREATED),
        route(
            M::PUT,
            "/api/v1/builds/{reference}/metadata/{key}",
            Some(W),
            "set a metadata value",
            put(records::set_meta),
        )
        .takes::<records::MetaBody>()
        .guarded()
        .answers::<Applied>(S::OK),
        route(
            M::DELETE,
            "/api/v1/builds/{reference}/metadata/{key}",
            Some(W),
            "remove a metadata value",
            delete(records::delete_meta),
        )
        .guarded()
        .answers::<Applied>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease/break",
            Some(W),
            "release a build's lease",
            post(records::break_lease),
        )
        .answers::<Option<records::LeaseView>>(S::OK),
        route(
            M::GET,
            "/api/v1/builds/{reference}/export",
            Some(R),
            "a build as one document",
            get(records::export),
        )
        .answers::<BuildDocument>(S::OK),
        route(
            M::POST,
            "/api/v1/import",
            Some(A),
            "store a build document",
            // What `export` answers must import back: a build with many long failure
            // records is over the 4 MiB of other bodies.
            post(records::import).layer(DefaultBodyLimit::max(crate::IMPORT_LIMIT)),
        )
        .query::<records::ImportQuery>()
        .takes::<BuildDocument>()
        .answers::<Build>(S::CREATED),
        route(
            M::GET,
            "/api/v1/failures",
            Some(R),
            "failure records across builds",
            get(records::all_failures),
        )
        .query::<records::FailureQuery>()
        .answers::<Vec<FailureRecord>>(S::OK),
        route(M::GET, "/api/v1/leases", Some(R), "held leases (never their tokens)", get(records::leases))
            .answers::<Vec<records::LeaseView>>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease",
            Some(W),
            "acquire (or take over) a build's lease; answers its token, to this caller only",
            post(runner::acquire),
        )
        .takes::<runner::AcquireBody>()
        .answers::<Lease>(S::CREATED),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease/renew",
            Some(W),
            "the holder's heartbeat",
            post(runner::renew),
        )
        .takes::<runner::RenewBody>()
        .answers::<Lease>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/lease/release",
            Some(W),
            "the holder lets the build go",
            post(runner::release),
        )
        .takes::<runner::ReleaseBody>()
        .empty(S::NO_CONTENT),
        route(M::POST, "/api/v1/workers/beat", Some(W), "a worker's heartbeat", post(runner::beat))
            .takes::<runner::BeatBody>()
            .answers::<Option<WorkerRecord>>(S::OK),
        route(M::POST, "/api/v1/workers/exited", Some(W), "a worker stops", post(runner::exited))
            .takes::<runner::BeatBody>()
            .empty(S::NO_CONTENT),
        route(M::GET, "/api/v1/workers", Some(R), "workers seen lately", get(runner::workers))
            .query::<runner::WorkersQuery>()
            .answers::<runner::Workers>(S::OK),
        route(
            M::POST,
            "/api/v1/builds/{reference}/prune",
            Some(A),
            "remove a finished build the rule names",
            post(admin::prune),
        )
        .takes::<admin::PruneBody>()
        .answers::<Option<BuildDocument>>(S::OK),
        route(M::GET, "/api/v1/tokens", Some(A), "every token (never a secret)", get(admin::tokens))
            .answers::<Vec<TokenRecord>>(S::OK),
        route(
            M::POST,
            "/api/v1/tokens",
            Some(A),
            "store a token the client issued (its secret's hash only)",
            post(admin::create_token),
        )
        .takes::<TokenRecord>()
        .answers::<TokenRecord>(S::CREATED),
        route(M::GET, "/api/v1/tokens/{id}", Some(A), "one token by id", get(admin::token))
            .answers::<Option<TokenRecord>>(S::OK),
        route(
            M::POST,
            "/api/v1/tokens/{reference}/revoke",
            Some(A),
            "revoke a token by name or id",
            post(admin::revoke_token),
        )
        .answers::<TokenRecord>(S::OK),
        route(
            M::GET,
            "/api/v1/webhooks",
            Some(A),
            "every webhook endpoint (never a secret)",
            get(webhooks::list),
        )
        .answers::<Vec<WebhookRecord>>(S::OK),
        route(
            M::POST,
            "/api/v1/webhooks",
            Some(A),
            "add a webhook endpoint; answers its signing secret, this once",
            post(webhooks::add),
        )
        .takes::<NewWebhook>()
        .answers::<AddedWebhook>(S::CREATED),
        route(
            M::DELETE,
            "/api/v1/webhooks/{id}",
            Some(A),
            "remove a webhook endpoint and its deliveries",
            delete(webhooks::remove),
        )
        .answers::<WebhookRecord>(S::OK),
        route(
            M::GET,
            "/api/v1/webhooks/deliveries",
            Some(A),
            "webhook deliveries, newest first, with every attempt",
            get(webhooks::deliveries),
        )
        .query::<webhooks::DeliveriesQuery>()
        .answers::<Vec<Delivery>>(S::OK),
        route(
            M::GET,
            "/api/v1/catalog/{kind}",
            Some(R),
            "platforms, os-versions or image-types",
            get(records::catalog),
        )
        .answers::<Vec<CatalogItem>>(S::OK),
        route(M::POST, "/api/v1/catalog/{kind}", Some(W), "add a catalog item", post(admin::add_item))
            .takes::<CatalogItem>()
            .answers::<CatalogItem>(S::CREATED),
        route(M::GET, "/api/v1/catalog/{kind}/{name}", Some(R), "one catalog item", get(admin::item))
            .answers::<CatalogItem>(S::OK),
        route(
            M::DELETE,
            "/api/v1/catalog/{kind}/{name}",
            Some(A),
            "remove an unused catalog item",
            delete(admin::remove_item),
        )
        .empty(S::NO_CONTENT),
        route(
            M::GET,
            "/api/v1/reports/{report}",
            Some(R),
            "a report of `buildstate report`",
            get(reports::report),
        )
        .query::<reports::ReportQuery>()
        .answers::<Report>(S::OK),
    ]
}

/// Every route of the server over `state`'s store.
pub fn router(state: AppState) -> Router {
    let mut router = crate::dashboard::pages();
    for r in routes() {
        // Methods of one path are merged into one method router.
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(|| async {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, "no_route", "no such route")
                .with_hint("the API is under /api/v1")
        })
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
