//! Values bound to statements, and domain values as the rows the statements write.
//!
//! One representation for both SQL backends; each adapter binds a [`SqlValue`] in its
//! driver's terms (SQLite: integer microseconds, JSON text, ids as text; PostgreSQL:
//! `timestamptz`, `jsonb`, `uuid`, and the integer width of the parameter) and reads
//! its rows back into them.

use buildstate_core::{Artifact, Build, BuildId, CatalogItem, FailureRecord, HistoryEvent, WorkerRecord};
use jiff::Timestamp;

use crate::{LeaseRecord, StoreError, StoreResult};

/// A value bound to a statement, or read from a row.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Time(Timestamp),
    Id(BuildId),
    /// JSON text.
    Json(String),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}
impl From<u32> for SqlValue {
    fn from(v: u32) -> Self {
        SqlValue::Int(i64::from(v))
    }
}
impl From<i32> for SqlValue {
    fn from(v: i32) -> Self {
        SqlValue::Int(i64::from(v))
    }
}
impl From<u8> for SqlValue {
    fn from(v: u8) -> Self {
        SqlValue::Int(i64::from(v))
    }
}
impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        SqlValue::Bool(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&String> for SqlValue {
    fn from(v: &String) -> Self {
        SqlValue::Text(v.clone())
    }
}
impl From<Timestamp> for SqlValue {
    fn from(v: Timestamp) -> Self {
        SqlValue::Time(v)
    }
}
impl From<BuildId> for SqlValue {
    fn from(v: BuildId) -> Self {
        SqlValue::Id(v)
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// Converts an unsigned value for binding: SQL integers are signed 64-bit.
pub fn to_i64(what: &str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| {
        StoreError::InvalidInput(format!("{what} {value} is too large to store (the limit is {})", i64::MAX))
    })
}

fn json(what: &'static str, value: &impl serde::Serialize) -> StoreResult<SqlValue> {
    serde_json::to_string(value).map(SqlValue::Json).map_err(|e| StoreError::backend(what, e))
}

macro_rules! values {
    ($($v:expr),* $(,)?) => { vec![$(SqlValue::from($v)),*] };
}

/// The columns of a build row (`build_columns!` order).
pub fn build(b: &Build) -> StoreResult<Vec<SqlValue>> {
    // `NULL` for the default catalog, which nearly every build uses.
    let catalog =
        if b.catalog.is_default() { SqlValue::Null } else { json("encode the catalog", &b.catalog)? };
    let mut v = values![b.id, b.number.as_str(), b.platform.as_str(), b.os.as_str(), b.image_type.as_str()];
    v.push(catalog);
    v.extend(values![
        b.state.get(),
        b.status.as_str(),
        b.needs_intervention,
        b.attempt,
        b.attempt_started_at,
        b.created_at,
        b.started_at,
        b.ended_at,
        b.updated_at,
        &b.created_by,
        b.ci_url.clone(),
    ]);
    v.push(json("encode metadata", &b.metadata)?);
    v.extend(values![
        to_i64("version", b.version)?,
        to_i64("history length", b.history_len)?,
        b.failure_count
    ]);
    Ok(v)
}

/// The parameters of `UPDATE_BUILD_CAS`: from `old_version` to `b`.
pub fn swap_build(b: &Build, old_version: u64) -> StoreResult<Vec<SqlValue>> {
    let mut v = values![
        b.id,
        to_i64("version", old_version)?,
        b.state.get(),
        b.status.as_str(),
        b.needs_intervention,
        b.attempt,
        b.attempt_started_at,
        b.started_at,
        b.ended_at,
        b.updated_at,
    ];
    v.push(json("encode metadata", &b.metadata)?);
    v.extend(values![
        to_i64("version", b.version)?,
        to_i64("history length", b.history_len)?,
        b.failure_count
    ]);
    Ok(v)
}

/// The columns of a history event (`event_columns!` order).
pub fn event(build: BuildId, e: &HistoryEvent) -> StoreResult<Vec<SqlValue>> {
    Ok(values![
        build,
        to_i64("event number", e.seq)?,
        e.at,
        e.kind.as_str(),
        e.state.get(),
        e.attempt,
        &e.actor,
        e.started_at,
        e.duration_ms.map(|d| to_i64("duration", d)).transpose()?,
        e.exit_code,
        e.message.clone(),
        e.log.clone(),
        e.from_state.map(|s| s.get()),
        e.forced,
    ])
}

/// The columns of a failure record (`failure_columns!` order).
pub fn failure(f: &FailureRecord) -> StoreResult<Vec<SqlValue>> {
    let mut v = values![
        f.build_id,
        f.number,
        f.state.get(),
        f.attempt,
        f.at,
        f.info.failure_type.as_str(),
        f.info.class.as_str(),
        f.info.component.clone(),
        f.info.message.clone(),
    ];
    v.push(json("encode failure details", &f.info.details)?);
    v.extend(values![f.info.exit_code, f.resolved, f.resolution.clone(), f.resolved_at]);
    Ok(v)
}

/// The parameters of `RESOLVE_FAILURE`.
pub fn resolve_failure(f: &FailureRecord) -> Vec<SqlValue> {
    values![f.build_id, f.number, f.resolution.clone(), f.resolved_at]
}

/// `build_id`, then the columns of an artifact (`artifact_columns!` order).
pub fn artifact(build: BuildId, a: &Artifact) -> StoreResult<Vec<SqlValue>> {
    Ok(values![
        build,
        &a.name,
        a.kind.as_str(),
        &a.uri,
        a.region.clone(),
        a.size_bytes.map(|s| to_i64("artifact size", s)).transpose()?,
        a.sha256.as_ref().map(|h| h.as_str()),
        a.created_at,
        a.milestone.map(|m| m.get()),
        a.invalidated_at,
        a.cloud.clone(),
    ])
}

/// The columns of a worker record (`worker_columns!` order).
pub fn worker(w: &WorkerRecord) -> StoreResult<Vec<SqlValue>> {
    Ok(values![
        &w.name,
        &w.host,
        w.pid,
        w.started_at,
        w.last_seen,
        to_i64("heartbeat", w.heartbeat_ms)?,
        w.build,
        w.exited_at,
    ])
}

/// The columns of a lease record (`lease_columns!` order).
pub fn lease(r: &LeaseRecord) -> StoreResult<Vec<SqlValue>> {
    let l = &r.lease;
    Ok(values![
        l.build_id,
        &l.owner,
        &l.host,
        l.pid,
        to_i64("lease token", l.token.get())?,
        l.acquired_at,
        l.renewed_at,
        l.expires_at,
        r.released,
    ])
}

/// The columns of a catalog item (`KindSql` order).
pub fn catalog_item(item: &CatalogItem) -> Vec<SqlValue> {
    match item {
        CatalogItem::Platform(p) => values![p.name.as_str(), &p.display_name, &p.provider, p.region.clone()],
        CatalogItem::Os(o) => values![o.name.as_str(), &o.display_name, &o.family, o.major, o.minor],
        CatalogItem::ImageType(i) => values![i.name.as_str(), &i.display_name, &i.description],
    }
}

/// The parameters of `text::ADD_ATTEMPT_STAT`.
pub fn attempt_stat(r: &crate::report::StatRow) -> Vec<SqlValue> {
    vec![
        r.platform.as_str().into(),
        r.os.as_str().into(),
        r.image_type.as_str().into(),
        r.state.get().into(),
        r.kind.as_str().into(),
        SqlValue::Int(i64::from(r.bucket)),
        r.attempts.into(),
        r.total_ms.into(),
        r.retries.into(),
    ]
}

/// The parameters of `text::ADD_DURATION`.
pub fn duration_row(r: &crate::report::DurationRow) -> Vec<SqlValue> {
    vec![r.state.get().into(), SqlValue::Int(i64::from(r.bucket)), r.attempts.into(), r.total_ms.into()]
}
