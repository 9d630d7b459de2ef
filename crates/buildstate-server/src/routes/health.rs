//! `/healthz`: the process answers. `/readyz`: it can read its store (whose schema the
//! server brought up to date when it opened it).

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use buildstate_core::CatalogKind;

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Status {
    status: &'static str,
}

pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    state.store.catalog(CatalogKind::Platform).await?;
    Ok(Json(Status { status: "ready" }))
}
