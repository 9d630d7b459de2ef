//! `GET /running`: running builds with their elapsed time and ETA.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use buildstate_store::report::ReportName;

use super::html;
use super::reports;
use super::session::Viewer;
use crate::AppState;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    match reports::compute(&state, ReportName::Running).await {
        Ok(r) => {
            let body = reports::table(&r, "Running builds: elapsed time and ETA");
            html::page(StatusCode::OK, "Running", "/running", &viewer, None, &body)
        }
        Err(e) => html::message(e.status, &viewer, "The store cannot be read", &e.message),
    }
}
