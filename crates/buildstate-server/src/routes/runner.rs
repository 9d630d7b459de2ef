//! What a runner on another machine needs to run builds through the server as it does
//! against a local store: a build's lease (acquire, take over, renew, release) and the
//! worker registry's heartbeats. The lease token is answered only to the runner that
//! was granted it, which then sends it with each write (`Buildstate-Lease-Token`), so
//! fencing works across the network exactly as locally.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use buildstate_core::{BuildId, Lease, LeaseRequest, LeaseToken, WorkerBeat, WorkerRecord};
use serde::{Deserialize, Serialize};

use super::body::{Body, Path, Query, TEXT_LINE};
use crate::AppState;
use crate::auth::{CanRead, CanWrite};
use crate::error::ApiError;

/// Longest lease or heartbeat interval a client may ask for: a day.
const MAX_TTL_MS: u64 = 24 * 3600 * 1000;

fn ttl(ms: u64) -> Result<Duration, ApiError> {
    if ms == 0 || ms > MAX_TTL_MS {
        return Err(ApiError::invalid(format!("ttl_ms must be 1 to {MAX_TTL_MS} (a day), not {ms}")));
    }
    Ok(Duration::from_millis(ms))
}

/// `POST /api/v1/builds/{ref}/lease`: who asks, for how long.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireBody {
    #[schemars(regex(pattern = TEXT_LINE), length(max = 256))]
    owner: String,
    #[schemars(regex(pattern = TEXT_LINE), length(max = 256))]
    host: String,
    pid: u32,
    #[schemars(range(min = 1, max = MAX_TTL_MS))]
    ttl_ms: u64,
    /// Take over from this (expired) lease instead of acquiring a free one.
    take_over: Option<LeaseToken>,
}

pub async fn acquire(
    _: CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Body(a): Body<AcquireBody>,
) -> Result<(StatusCode, Json<Lease>), ApiError> {
    let b = state.store.find_build(&reference).await?;
    let request = LeaseRequest { owner: a.owner, host: a.host, pid: a.pid, ttl: ttl(a.ttl_ms)? };
    let lease = match a.take_over {
        Some(dead) => {
            // A client never saw the secret of a lease it does not hold (leases are
            // listed redacted), so it names the dead lease by its generation: the held
            // lease of that generation is superseded, exactly that one. No weaker than
            // `lease/break`, which the same scope may call.
            let held = state.store.leases().await?.into_iter().find(|l| l.build_id == b.id);
            let dead = match held {
                Some(l) if l.token.redacted() == dead.redacted() => l.token,
                _ => dead,
            };
            state.store.take_over_lease(b.id, &request, dead).await?
        }
        None => state.store.acquire_lease(b.id, &request).await?,
    };
    Ok((StatusCode::CREATED, Json(lease)))
}

/// `POST /api/v1/builds/{ref}/lease/renew`: the holder's token and the new time to
/// live (required: schemathesis found a renewal without one documented as valid).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    token: LeaseToken,
    #[schemars(range(min = 1, max = MAX_TTL_MS))]
    ttl_ms: u64,
}

/// `POST /api/v1/builds/{ref}/lease/release`: the holder's token.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    token: LeaseToken,
}

pub async fn renew(
    _: CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Body(h): Body<RenewBody>,
) -> Result<Json<Lease>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    Ok(Json(state.store.renew_lease(b.id, h.token, ttl(h.ttl_ms)?).await?))
}

pub async fn release(
    _: CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    Body(h): Body<ReleaseBody>,
) -> Result<StatusCode, ApiError> {
    let b = state.store.find_build(&reference).await?;
    state.store.release_lease(b.id, h.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/workers/beat` and `…/exited`: a worker's heartbeat.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeatBody {
    #[schemars(regex(pattern = TEXT_LINE), length(max = 256))]
    name: String,
    #[schemars(regex(pattern = TEXT_LINE), length(max = 256))]
    host: String,
    pid: u32,
    #[schemars(range(min = 1, max = MAX_TTL_MS))]
    heartbeat_ms: u64,
    build: Option<BuildId>,
    #[serde(default)]
    starting: bool,
}

impl BeatBody {
    fn beat(self) -> Result<WorkerBeat, ApiError> {
        Ok(WorkerBeat {
            heartbeat: ttl(self.heartbeat_ms)?,
            name: self.name,
            host: self.host,
            pid: self.pid,
            build: self.build,
            starting: self.starting,
        })
    }
}

/// Answers the record as it was before this beat (`null`: the first of this name).
pub async fn beat(
    _: CanWrite,
    State(state): State<AppState>,
    Body(b): Body<BeatBody>,
) -> Result<Json<Option<WorkerRecord>>, ApiError> {
    Ok(Json(state.store.worker_beat(&b.beat()?).await?))
}

pub async fn exited(
    _: CanWrite,
    State(state): State<AppState>,
    Body(b): Body<BeatBody>,
) -> Result<StatusCode, ApiError> {
    state.store.worker_exited(&b.beat()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkersQuery {
    /// Workers seen within this many milliseconds (default: an hour).
    within_ms: Option<u64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Workers {
    /// The store's clock, which ages are judged by.
    now: jiff::Timestamp,
    workers: Vec<WorkerRecord>,
}

pub async fn workers(
    _: CanRead,
    State(state): State<AppState>,
    Query(q): Query<WorkersQuery>,
) -> Result<Json<Workers>, ApiError> {
    // Up to the registry's own memory: a week.
    let within = Duration::from_millis(q.within_ms.unwrap_or(3600 * 1000).min(7 * 24 * 3600 * 1000));
    let list = state.store.workers(within).await?;
    Ok(Json(Workers { now: list.now, workers: list.workers }))
}
