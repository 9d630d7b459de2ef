//! The catalog's writes, tokens and pruning: what `buildstate platform add`, `token …`
//! and `prune` do, for a CLI working through the server. Adding to the catalog is a
//! write; removing from it, tokens and pruning are the admin's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use buildstate_core::{BuildDocument, BuildStatus, CatalogItem, CatalogKind, Name, TokenId, TokenRecord};
use buildstate_store::PruneRule;
use serde::Deserialize;

use super::body::{Body, Path};
use crate::AppState;
use crate::auth::{CanAdmin, CanRead, CanWrite};
use crate::error::ApiError;

/// The catalog a path names: `platforms`, `os-versions` or `image-types`.
pub(super) fn catalog_kind(kind: &str) -> Result<CatalogKind, ApiError> {
    match kind {
        "platforms" => Ok(CatalogKind::Platform),
        "os-versions" => Ok(CatalogKind::Os),
        "image-types" => Ok(CatalogKind::ImageType),
        _ => Err(ApiError::not_found(format!("no catalog `{}`", kind.escape_debug()))
            .with_hint("use platforms, os-versions or image-types")),
    }
}

fn name(raw: &str) -> Result<Name, ApiError> {
    Name::new(raw).map_err(|e| ApiError::invalid(e.to_string()))
}

/// `POST /api/v1/catalog/{kind}`: one item, of that kind.
pub async fn add_item(
    _: CanWrite,
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Body(item): Body<CatalogItem>,
) -> Result<(StatusCode, Json<CatalogItem>), ApiError> {
    let kind = catalog_kind(&kind)?;
    if item.kind() != kind {
        return Err(ApiError::invalid(format!("this is the {kind} catalog; the item is a {}", item.kind())));
    }
    state.store.add_catalog_item(&item).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// `GET /api/v1/catalog/{kind}/{name}`.
pub async fn item(
    _: CanRead,
    State(state): State<AppState>,
    Path((kind, item)): Path<(String, String)>,
) -> Result<Json<CatalogItem>, ApiError> {
    Ok(Json(state.store.catalog_item(catalog_kind(&kind)?, &name(&item)?).await?))
}

/// `DELETE /api/v1/catalog/{kind}/{name}`: refused while builds refer to it.
pub async fn remove_item(
    _: CanAdmin,
    State(state): State<AppState>,
    Path((kind, item)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.store.remove_catalog_item(catalog_kind(&kind)?, &name(&item)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tokens`: every token, never a secret (the store has none to give).
pub async fn tokens(_: CanAdmin, State(state): State<AppState>) -> Result<Json<Vec<TokenRecord>>, ApiError> {
    Ok(Json(state.store.tokens().await?))
}

/// `GET /api/v1/tokens/{id}`: `null` when no token has that id.
pub async fn token(
    _: CanAdmin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Option<TokenRecord>>, ApiError> {
    let id: TokenId =
        id.parse().map_err(|e: buildstate_core::TokenError| ApiError::invalid(e.to_string()))?;
    Ok(Json(state.store.token(&id).await?))
}

/// `POST /api/v1/tokens`: a token the client issued (`buildstate token create
/// --server`), which sends only the secret's SHA-256: the server never sees a secret.
pub async fn create_token(
    _: CanAdmin,
    State(state): State<AppState>,
    Body(record): Body<TokenRecord>,
) -> Result<(StatusCode, Json<TokenRecord>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.store.create_token(&record).await?)))
}

/// `POST /api/v1/tokens/{reference}/revoke`: by name or id; answers the revoked token.
pub async fn revoke_token(
    _: CanAdmin,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<TokenRecord>, ApiError> {
    Ok(Json(state.store.revoke_token(&reference).await?))
}

/// `POST /api/v1/builds/{ref}/prune`: the rule of `buildstate prune`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneBody {
    statuses: Vec<BuildStatus>,
    ended_before: jiff::Timestamp,
}

/// Answers the document of the build removed, `null` when the rule keeps it.
pub async fn prune(
    _: CanAdmin,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Body(p): Body<PruneBody>,
) -> Result<Json<Option<BuildDocument>>, ApiError> {
    let rule = PruneRule::new(p.statuses, p.ended_before)?;
    let b = state.store.find_build(&reference).await?;
    Ok(Json(state.store.prune_build(b.id, &rule).await?))
}
