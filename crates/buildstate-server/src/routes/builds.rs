//! Builds: list, create, get, cancel, history, and transitions
//! (`POST /api/v1/builds/{ref}/transitions`). A reference is what the CLI takes: a full
//! id, a build number, or a unique prefix of either. Every write goes through
//! `Store::apply` with the same rules as the CLI; `If-Match: <version>` makes it
//! conditional on the version the client read (412 when it moved on).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use buildstate_core::{
    Build, BuildNumber, BuildStatus, Command, FailureClass, FailureInfo, FailureType, HistoryEvent, MetaKey,
    MetaValue, Name, NewBuild, RetryPolicy, StateCatalog, StateCode,
};
use buildstate_store::wire::{Applied, WireError};
use buildstate_store::{BuildFilter, Guard, StoreError};
use jiff::Timestamp;
use serde::Deserialize;

use super::body::{Body, Path, Query};
use crate::AppState;
use crate::auth::{CanRead, CanWrite};
use crate::error::ApiError;

/// Most builds one list answers (`limit` may ask for fewer).
const MAX_LIST: usize = 1000;

/// `GET /api/v1/builds`: the filters of `buildstate build list`, newest first.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<BuildStatus>,
    platform: Option<Name>,
    os: Option<Name>,
    image: Option<Name>,
    state: Option<StateCode>,
    /// As `--since` reads it: a date, an RFC 3339 time or how long ago (`90d`, `36h`); the
    /// pattern is the simple forms, all in the past.
    #[schemars(regex(
        pattern = r"^([1-9][0-9]{0,3}[dh]|(19[7-9][0-9]|20[01][0-9]|202[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$"
    ))]
    since: Option<String>,
    needs_intervention: Option<bool>,
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<usize>,
    /// The `next` of the page before.
    #[schemars(regex(
        pattern = r"^-?[0-9]{1,16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    ))]
    after: Option<String>,
}

/// A page of builds, and the cursor of the next one (`None`: this was the last).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Page {
    builds: Vec<Build>,
    next: Option<String>,
}

/// A cursor: the last build's creation time (microseconds) and id, `<micros>.<id>`.
fn cursor(b: &Build) -> String {
    format!("{}.{}", b.created_at.as_microsecond(), b.id)
}

fn parse_cursor(raw: &str) -> Result<(Timestamp, buildstate_core::BuildId), ApiError> {
    let bad = || ApiError::invalid("`after` is not a cursor: pass the `next` of the page before, unchanged");
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let at = micros.parse::<i64>().ok().and_then(|m| Timestamp::from_microsecond(m).ok()).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

pub async fn list(
    _: CanRead,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_LIST}, not {limit}")));
    }
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    let filter = BuildFilter {
        status: q.status,
        platform: q.platform,
        os: q.os,
        image_type: q.image,
        state: q.state,
        since: super::body::since(q.since.as_deref())?,
        needs_intervention: q.needs_intervention,
        after,
        // One more than asked for says whether there is a next page.
        limit: Some(limit + 1),
    };
    let mut builds = state.store.list_builds(&filter).await?;
    let more = builds.len() > limit;
    builds.truncate(limit);
    let next = if more { builds.last().map(cursor) } else { None };
    Ok(Json(Page { builds, next }))
}

/// `POST /api/v1/builds`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    platform: Name,
    os: Name,
    image_type: Name,
    number: Option<BuildNumber>,
    ci_url: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<MetaKey, MetaValue>,
    /// The build's own milestones; the default catalog if absent.
    catalog: Option<StateCatalog>,
}

pub async fn create(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Build>), ApiError> {
    let new = NewBuild {
        platform: b.platform,
        os: b.os,
        image_type: b.image_type,
        number: b.number,
        catalog: b.catalog.unwrap_or_default(),
        created_by: caller.actor(),
        ci_url: b.ci_url,
        metadata: b.metadata,
    };
    Ok((StatusCode::CREATED, Json(state.store.create_build(&new).await?)))
}

pub async fn get(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<Build>, ApiError> {
    Ok(Json(state.store.find_build(&reference).await?))
}

pub async fn history(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<Vec<HistoryEvent>>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    Ok(Json(state.store.history(b.id).await?))
}

/// `GET /api/v1/builds/{ref}/attempts`: every attempt at every milestone, oldest
/// first, as `build show` lists them (assembled from the history, by the one rule
/// `buildstate_core::attempts` keeps).
pub async fn attempts(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<Vec<buildstate_core::Attempt>>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    Ok(Json(buildstate_core::attempts(&state.store.history(b.id).await?)))
}

/// `GET /api/v1/builds/{ref}/resume`: what to run next and why, as `buildstate resume
/// --json` prints it (`buildstate_core::resume_plan`), its exit code included.
pub async fn resume(
    _: CanRead,
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<buildstate_core::ResumePlan>, ApiError> {
    let b = state.store.find_build(&reference).await?;
    let last_failure = if b.status == buildstate_core::BuildStatus::Failed {
        let filter =
            buildstate_store::FailureFilter { build: Some(b.id), limit: Some(1), ..Default::default() };
        state.store.failures(&filter).await?.into_iter().next()
    } else {
        None
    };
    Ok(Json(buildstate_core::resume_plan(&b, last_failure.as_ref())))
}

/// A failure as a client reports it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureBody {
    #[serde(rename = "type", default = "unknown_type")]
    failure_type: FailureType,
    class: FailureClass,
    #[serde(default)]
    message: String,
    component: Option<String>,
    #[serde(default)]
    details: BTreeMap<String, serde_json::Value>,
    exit_code: Option<i32>,
}

fn unknown_type() -> FailureType {
    FailureType::unknown()
}

/// `POST /api/v1/builds/{ref}/transitions`: one command of the transition rules.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransitionBody {
    Start {
        state: StateCode,
        log: Option<String>,
        #[serde(default)]
        force: bool,
    },
    Complete {
        state: StateCode,
        exit_code: Option<i32>,
        log: Option<String>,
    },
    Fail {
        state: StateCode,
        error: FailureBody,
        /// The attempts the milestone's policy allows; its default policy's if absent.
        max_attempts: Option<u32>,
        log: Option<String>,
    },
    Skip {
        state: StateCode,
        reason: String,
    },
    Retry {
        reason: Option<String>,
        #[serde(default)]
        force: bool,
    },
    Rewind {
        to: StateCode,
        reason: String,
    },
}

impl TransitionBody {
    fn command(self, actor: String) -> Command {
        match self {
            TransitionBody::Start { state, log, force } => Command::Start { state, actor, log, force },
            TransitionBody::Complete { state, exit_code, log } => {
                Command::Complete { state, actor, exit_code, log }
            }
            TransitionBody::Fail { state, error, max_attempts, log } => Command::Fail {
                state,
                actor,
                max_attempts: max_attempts.unwrap_or_else(|| RetryPolicy::default_for(state).max_attempts),
                failure: FailureInfo {
                    failure_type: error.failure_type,
                    class: error.class,
                    component: error.component,
                    message: error.message,
                    details: error.details,
                    exit_code: error.exit_code,
                },
                log,
            },
            TransitionBody::Skip { state, reason } => Command::Skip { state, actor, reason },
            TransitionBody::Retry { reason, force } => Command::Retry { actor, reason, force },
            TransitionBody::Rewind { to, reason } => Command::Rewind { to, actor, reason },
        }
    }
}

/// `If-Match: <version>` (quoted as an entity tag, or bare): the version the write
/// expects the build to be at. A precondition that fails is 412, from every write that
/// takes one ([`precondition`]).
pub(super) fn expected_version(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else { return Ok(None) };
    let text = v.to_str().unwrap_or_default().trim().trim_start_matches("W/").trim_matches('"');
    text.parse().map(Some).map_err(|_| {
        ApiError::bad_request(
            "If-Match must be the build's version, a whole number (the `version` a read returned)",
        )
    })
}

/// The header a runner sends its lease token in: a write under it is fenced, as a
/// local runner's is (refused once another runner took the build over).
pub const LEASE_HEADER: &str = "buildstate-lease-token";

/// The preconditions of a write: `If-Match` and the runner's lease token, and the
/// version expected (for [`precondition`]).
pub(super) fn guard(headers: &HeaderMap) -> Result<(Guard, Option<u64>), ApiError> {
    let expected = expected_version(headers)?;
    let mut guard = expected.map_or(Guard::none(), Guard::version);
    if let Some(v) = headers.get(LEASE_HEADER) {
        let token = v.to_str().ok().and_then(|t| t.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{LEASE_HEADER} must be the lease's token, a whole number (what acquiring the lease answered)"
            ))
        })?;
        guard = guard.and_lease(buildstate_core::LeaseToken::new(token));
    }
    Ok((guard, expected))
}

pub(super) async fn apply(
    state: &AppState,
    reference: &str,
    headers: &HeaderMap,
    cmd: Command,
) -> Result<Json<Applied>, ApiError> {
    let (guard, expected) = guard(headers)?;
    let b = state.store.find_build(reference).await?;
    state.store.apply(b.id, &cmd, guard).await.map(|o| Json(o.into())).map_err(|e| precondition(e, expected))
}

/// A store error as answered: with If-Match the caller asked for the version
/// precondition, so a version conflict is 412, as HTTP says.
pub(super) fn precondition(e: StoreError, expected: Option<u64>) -> ApiError {
    match e {
        e @ StoreError::Conflict { .. } if expected.is_some() => ApiError {
            detail: WireError::of(&e).map(Box::new),
            ..ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", e.to_string())
                .with_hint("read the build again and retry with its current version")
        },
        e => e.into(),
    }
}

pub async fn transition(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Body(t): Body<TransitionBody>,
) -> Result<Json<Applied>, ApiError> {
    apply(&state, &reference, &headers, t.command(caller.actor())).await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    #[schemars(regex(pattern = super::body::NOT_BLANK))]
    reason: String,
}

pub async fn cancel(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    Path(reference): Path<String>,
    headers: HeaderMap,
    Body(c): Body<CancelBody>,
) -> Result<Json<Applied>, ApiError> {
    apply(&state, &reference, &headers, Command::Cancel { actor: caller.actor(), reason: c.reason }).await
}
