//! `/healthz`: the process answers. `/readyz`: it can read its store (whose schema the
//! server brought up to date when it opened it).

use axum::Json;
use axum::extract::State;
use buildstate_core::CatalogKind;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.catalog(CatalogKind::Platform).await?;
    Ok(Json(json!({"status": "ready"})))
}
