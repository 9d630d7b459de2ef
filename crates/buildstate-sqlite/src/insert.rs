//! Domain values to rows: the writes shared by create, apply and import.

use buildstate_core::{Artifact, Build, BuildId, FailureRecord, HistoryEvent};
use buildstate_store::{LeaseRecord, StoreError, StoreResult};
use jiff::Timestamp;
use rusqlite::{Connection, params};

use crate::error::{SqlContext, to_i64};
use crate::sql;

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn opt_micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(micros)
}

fn to_json(context: &'static str, value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::backend(context, e))
}

/// `NULL` for the default catalog, which nearly every build uses.
fn catalog_json(b: &Build) -> StoreResult<Option<String>> {
    if b.catalog.is_default() { Ok(None) } else { to_json("encode the catalog", &b.catalog).map(Some) }
}

pub(crate) fn build(conn: &Connection, b: &Build) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(sql::INSERT_BUILD).ctx("prepare insert build")?;
    stmt.execute(params![
        b.id.to_string(),
        b.number.as_str(),
        b.platform.as_str(),
        b.os.as_str(),
        b.image_type.as_str(),
        catalog_json(b)?,
        b.state.get(),
        b.status.as_str(),
        b.needs_intervention,
        b.attempt,
        opt_micros(b.attempt_started_at),
        micros(b.created_at),
        opt_micros(b.started_at),
        opt_micros(b.ended_at),
        micros(b.updated_at),
        b.created_by,
        b.ci_url,
        to_json("encode metadata", &b.metadata)?,
        to_i64("version", b.version)?,
        to_i64("history length", b.history_len)?,
        b.failure_count,
    ])
    .ctx("insert build")?;
    Ok(())
}

/// Swaps the build row from `old_version` to `b`. `false` when the row is no longer at
/// `old_version` (another writer won), so nothing was written.
pub(crate) fn swap_build(conn: &Connection, b: &Build, old_version: u64) -> StoreResult<bool> {
    let mut stmt = conn.prepare_cached(sql::UPDATE_BUILD_CAS).ctx("prepare update build")?;
    let changed = stmt
        .execute(params![
            b.id.to_string(),
            to_i64("version", old_version)?,
            b.state.get(),
            b.status.as_str(),
            b.needs_intervention,
            b.attempt,
            opt_micros(b.attempt_started_at),
            opt_micros(b.started_at),
            opt_micros(b.ended_at),
            micros(b.updated_at),
            to_json("encode metadata", &b.metadata)?,
            to_i64("version", b.version)?,
            to_i64("history length", b.history_len)?,
            b.failure_count,
        ])
        .ctx("update build")?;
    Ok(changed == 1)
}

pub(crate) fn event(conn: &Connection, build: &BuildId, e: &HistoryEvent) -> StoreResult<()> {
    let duration = e.duration_ms.map(|d| to_i64("duration", d)).transpose()?;
    let mut stmt = conn.prepare_cached(sql::INSERT_EVENT).ctx("prepare insert event")?;
    stmt.execute(params![
        build.to_string(),
        to_i64("event number", e.seq)?,
        micros(e.at),
        e.kind.as_str(),
        e.state.get(),
        e.attempt,
        e.actor,
        opt_micros(e.started_at),
        duration,
        e.exit_code,
        e.message,
        e.log,
        e.from_state.map(|s| s.get()),
        e.forced,
    ])
    .ctx("insert event")?;
    Ok(())
}

pub(crate) fn failure(conn: &Connection, f: &FailureRecord) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(sql::INSERT_FAILURE).ctx("prepare insert failure")?;
    stmt.execute(params![
        f.build_id.to_string(),
        f.number,
        f.state.get(),
        f.attempt,
        micros(f.at),
        f.info.failure_type.as_str(),
        f.info.class.as_str(),
        f.info.component,
        f.info.message,
        to_json("encode failure details", &f.info.details)?,
        f.info.exit_code,
        f.resolved,
        f.resolution,
        opt_micros(f.resolved_at),
    ])
    .ctx("insert failure")?;
    Ok(())
}

/// Inserts the artifact, or replaces the one of the same name in place.
pub(crate) fn artifact(conn: &Connection, build: &BuildId, a: &Artifact) -> StoreResult<()> {
    let size = a.size_bytes.map(|s| to_i64("artifact size", s)).transpose()?;
    let mut stmt = conn.prepare_cached(sql::UPSERT_ARTIFACT).ctx("prepare upsert artifact")?;
    stmt.execute(params![
        build.to_string(),
        a.name,
        a.kind.as_str(),
        a.uri,
        a.region,
        size,
        a.sha256.as_ref().map(|h| h.as_str()),
        micros(a.created_at),
    ])
    .ctx("upsert artifact")?;
    Ok(())
}

/// Writes a build's lease record (grant, renewal, or the record kept across an import).
pub(crate) fn lease(conn: &Connection, r: &LeaseRecord) -> StoreResult<()> {
    let l = &r.lease;
    let mut stmt = conn.prepare_cached(sql::UPSERT_LEASE).ctx("prepare upsert lease")?;
    stmt.execute(params![
        l.build_id.to_string(),
        l.owner,
        l.host,
        l.pid,
        to_i64("lease token", l.token.get())?,
        micros(l.acquired_at),
        micros(l.renewed_at),
        micros(l.expires_at),
        r.released,
    ])
    .ctx("write lease")?;
    Ok(())
}
