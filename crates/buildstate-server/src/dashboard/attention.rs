//! `GET /attention`: builds that failed or need a person, with what failed last.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use buildstate_store::report::ReportName;

use super::html;
use super::reports;
use super::session::Viewer;
use crate::AppState;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    match reports::compute(&state, ReportName::Attention).await {
        Ok(r) => {
            let body = reports::table(&r, "Failed builds and builds that need a person");
            html::page(StatusCode::OK, "Needs attention", "/attention", &viewer, None, &body)
        }
        Err(e) => html::message(e.status, &viewer, "The store cannot be read", &e.message),
    }
}
