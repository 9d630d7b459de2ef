//! Webhook endpoints and their deliveries (`buildstate webhook …` through the server):
//! the admin's. A secret goes out once, in the answer to the add; listings never hold
//! one ([`WebhookRecord`] does not serialize it).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use buildstate_core::{AddedWebhook, Delivery, NewWebhook, WebhookId, WebhookRecord};
use serde::Deserialize;

use super::body::{Body, Path, Query};
use crate::AppState;
use crate::auth::CanAdmin;
use crate::error::ApiError;

/// Most deliveries one listing answers.
const MAX_LISTED: usize = 1000;

/// `GET /api/v1/webhooks`.
pub async fn list(_: CanAdmin, State(state): State<AppState>) -> Result<Json<Vec<WebhookRecord>>, ApiError> {
    Ok(Json(state.store.webhooks().await?))
}

/// `POST /api/v1/webhooks`: answers the endpoint with its signing secret, this once.
pub async fn add(
    _: CanAdmin,
    State(state): State<AppState>,
    Body(new): Body<NewWebhook>,
) -> Result<(StatusCode, Json<AddedWebhook>), ApiError> {
    let record = state.store.add_webhook(&new).await?;
    let secret = record.secret.clone();
    Ok((StatusCode::CREATED, Json(AddedWebhook { webhook: record, secret })))
}

/// `DELETE /api/v1/webhooks/{id}`: with its deliveries; answers the endpoint removed.
pub async fn remove(
    _: CanAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WebhookRecord>, ApiError> {
    Ok(Json(state.store.remove_webhook(&id).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only this endpoint's.
    webhook: Option<String>,
    /// At most this many (default 50, at most 1000).
    limit: Option<usize>,
}

/// `GET /api/v1/webhooks/deliveries`: newest first, each with every attempt.
pub async fn deliveries(
    _: CanAdmin,
    State(state): State<AppState>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let webhook = match q.webhook.as_deref() {
        Some(raw) => Some(
            raw.parse::<WebhookId>()
                .map_err(|e: buildstate_core::WebhookError| ApiError::invalid(e.to_string()))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LISTED);
    Ok(Json(state.store.deliveries(webhook.as_ref(), limit).await?))
}
