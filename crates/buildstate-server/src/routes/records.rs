//! What a build carries besides its state: failures (list, resolve), artifacts,
//! metadata, its lease, and the build as one document (export, import); and the
//! catalog. The same store calls as the CLI's `failure`, `artifact`, `meta`, `lease`,
//! `export` and `import`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use buildstate_core::{
    Artifact, ArtifactKind, Build, BuildDocument, CatalogItem, Command, FailureRecord, FailureType, Lease,
    MetaKey, MetaValue, Sha256Hex, StateCode,
};
use buildstate_store::wire::Applied;
use buildstate_store::{FailureFilter, ImportMode};
use serde::Deserialize;

use super::body::{Body, Path, Query, TEXT_LINE};
use super::builds::{apply, guard, precondition};
use crate::AppState;
use crate::auth::{CanAdmin, CanRead, CanWrite};
use crate::error::ApiError;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureQuery {
    #[serde(default)]
    unresolved: bool,
    state: Option<StateCode>,
    #[serde(rename = "type")]
    failure_type: Option<FailureType>,
    /// At most this many (1 to 1000; default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
}

/// A limit outside 1 to 1000 is refused, as the build list refuses it (it was clamped:
/// schemathesis found `limit=0` accepted though the document says 1 to 1000).
fn failure_filter(q: FailureQuery) -> Result<FailureFilter, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be 1 to 1000, not {limit}")));
    }
    Ok(FailureFilter {
        build: None,
        unresolved_only: q.unresolved,
        state: q.state,
        failure_type: q.failure_type,
        limit: Some(limit),
    })
}

/// `GET /api/v1/failures`: across builds, newest first.
pub async fn all_failures(
    _: CanRead,
    State(state): State<AppState>,
    Query(q): Query<FailureQuery>,
) -> Result<Json<Vec<FailureRecord>>, ApiError> {
    Ok(Json(state.store.failures(&failure_filter(q)?).await?))
}

/// `GET /api/v1/builds/{ref}/failures`.
pub async fn failures(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Query(q): Query<FailureQuery>,
) -> Result<Json<Vec<FailureRecord>>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    let filter = FailureFilter { build: Some(b.id), ..failure_filter(q)? };
    Ok(Json(state.store.failures(&filter).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// One failure by its number; every unresolved one if absent.
    number: Option<u32>,
    notes: String,
}

/// `POST /api/v1/builds/{ref}/failures/resolve`.
pub async fn resolve(
    _: CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Body(r): Body<ResolveBody>,
) -> Result<Json<Vec<FailureRecord>>, ApiError> {
    let (guard, expected) = guard(&headers)?;
    let b = state.store.find_build(&reference).await?;
    let resolved = state.store.resolve_failures(b.id, r.number, &r.notes, guard).await;
    resolved.map(Json).map_err(|e| precondition(e, expected))
}

/// `GET /api/v1/builds/{ref}/artifacts`: current and invalidated, as first recorded.
pub async fn artifacts(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<Vec<Artifact>>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    Ok(Json(state.store.artifacts(b.id).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactBody {
    #[schemars(regex(pattern = TEXT_LINE), length(max = 256))]
    name: String,
    kind: ArtifactKind,
    #[schemars(regex(pattern = TEXT_LINE), length(max = 4096))]
    uri: String,
    #[schemars(regex(pattern = TEXT_LINE), length(max = 128))]
    region: Option<String>,
    /// `aws`, `azure`, `gcp`, `openstack`, …: the cloud the artifact is in, if any.
    #[schemars(regex(pattern = TEXT_LINE), length(max = 128))]
    cloud: Option<String>,
    /// Every backend stores sizes as signed 64-bit integers.
    #[schemars(range(max = i64::MAX))]
    size_bytes: Option<u64>,
    sha256: Option<Sha256Hex>,
}

/// `POST /api/v1/builds/{ref}/artifacts`: one artifact (same name: replaced); answers
/// the build's artifacts.
pub async fn add_artifact(
    _: CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Body(a): Body<ArtifactBody>,
) -> Result<(StatusCode, Json<Vec<Artifact>>), ApiError> {
    let (guard, expected) = guard(&headers)?;
    let b = state.store.find_build(&reference).await?;
    let artifact = Artifact {
        name: a.name,
        kind: a.kind,
        uri: a.uri,
        region: a.region,
        cloud: a.cloud,
        size_bytes: a.size_bytes,
        sha256: a.sha256,
        // The store stamps its own clock and the build's milestone.
        created_at: buildstate_store::now(),
        milestone: None,
        invalidated_at: None,
    };
    state.store.add_artifact(b.id, &artifact, guard).await.map_err(|e| precondition(e, expected))?;
    Ok((StatusCode::CREATED, Json(state.store.artifacts(b.id).await?)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetaBody {
    value: MetaValue,
}

/// `PUT /api/v1/builds/{ref}/metadata/{key}` `{"value": …}`.
pub async fn set_meta(
    _: CanWrite,
    State(state): State<AppState>,
    Path((reference, key)): Path<(String, String)>,
    headers: HeaderMap,
    Body(m): Body<MetaBody>,
) -> Result<Json<Applied>, ApiError> {
    let key = MetaKey::new(&key).map_err(|e| ApiError::invalid(e.to_string()))?;
    apply(&state, &reference, &headers, Command::SetMeta { key, value: Some(m.value) }).await
}

/// `DELETE /api/v1/builds/{ref}/metadata/{key}`.
pub async fn delete_meta(
    _: CanWrite,
    State(state): State<AppState>,
    Path((reference, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Applied>, ApiError> {
    let key = MetaKey::new(&key).map_err(|e| ApiError::invalid(e.to_string()))?;
    apply(&state, &reference, &headers, Command::SetMeta { key, value: None }).await
}

/// A lease as others see it: which grant it is, never its token (the holder's secret:
/// with it, anyone could write as the runner).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LeaseView {
    build_id: String,
    owner: String,
    host: String,
    pid: u32,
    generation: u64,
    acquired_at: jiff::Timestamp,
    renewed_at: jiff::Timestamp,
    expires_at: jiff::Timestamp,
    expired: bool,
}

impl LeaseView {
    fn of(l: Lease, now: jiff::Timestamp) -> Self {
        LeaseView {
            build_id: l.build_id.to_string(),
            generation: l.token.generation(),
            expired: l.is_expired(now),
            owner: l.owner,
            host: l.host,
            pid: l.pid,
            acquired_at: l.acquired_at,
            renewed_at: l.renewed_at,
            expires_at: l.expires_at,
        }
    }
}

/// `GET /api/v1/leases`: every held lease, expired ones included.
pub async fn leases(_: CanRead, State(state): State<AppState>) -> Result<Json<Vec<LeaseView>>, ApiError> {
    let now = buildstate_store::now();
    Ok(Json(state.store.leases().await?.into_iter().map(|l| LeaseView::of(l, now)).collect()))
}

/// `POST /api/v1/builds/{ref}/lease/break`: the lease it released (`null`: none held).
pub async fn break_lease(
    _: CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Option<LeaseView>>, ApiError> {
    if headers.contains_key(axum::http::header::IF_MATCH) {
        // A lease is not part of the build's version: there is nothing to compare.
        return Err(ApiError::bad_request(
            "breaking a lease takes no If-Match: a lease does not change the build's version",
        ));
    }
    let b = state.store.find_build(&reference).await?;
    let now = buildstate_store::now();
    Ok(Json(state.store.break_lease(b.id).await?.map(|l| LeaseView::of(l, now))))
}

/// `GET /api/v1/builds/{ref}/export`: the build as one self-contained document.
pub async fn export(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<BuildDocument>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    Ok(Json(state.store.export_build(b.id).await?))
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    #[serde(default)]
    replace: bool,
}

/// `POST /api/v1/import[?replace=true]`: a document `export` wrote, checked whole
/// before the store is touched. Admin only: a document carries its history as written,
/// actors included, so importing one is recording on others' behalf.
pub async fn import(
    _: CanAdmin,
    State(state): State<AppState>,
    Query(q): Query<ImportQuery>,
    Body(doc): Body<BuildDocument>,
) -> Result<(StatusCode, Json<Build>), ApiError> {
    // With the store's error in `detail`, as any refusal: a client reads back which
    // rule the document broke.
    let parts = doc.into_parts().map_err(|e| ApiError::from(buildstate_store::StoreError::Document(e)))?;
    let mode = if q.replace { ImportMode::Replace } else { ImportMode::CreateOnly };
    Ok((StatusCode::CREATED, Json(state.store.import_build(parts, mode).await?)))
}

/// `GET /api/v1/catalog/{kind}`: `platforms`, `os-versions` or `image-types`.
pub async fn catalog(
    _: CanRead,
    State(state): State<AppState>,
    Path(kind): Path<String>,
) -> Result<Json<Vec<CatalogItem>>, ApiError> {
    let kind = super::admin::catalog_kind(&kind)?;
    Ok(Json(state.store.catalog(kind).await?))
}
