//! Builds: create, read, find, list, and transitions.

use buildstate_core::{Build, BuildId, CatalogKind, Command, HistoryEvent, NewBuild, Outcome};
use buildstate_store::{
    BuildFilter, Guard, LeaseRecord, StoreError, StoreResult, build_number_stem, check_new_build, now,
    plan_transition, resolve_candidates,
};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::error::to_i64;
use crate::numbers::{next_number, prefix_upper_bound};
use crate::{catalog, insert, leases, rows, sql};

/// Creates a build in the caller's write transaction: the catalog check, the number
/// allocation and the insert see no other writer in between, which is what keeps
/// numbers unique for creates in the same second.
pub(crate) fn create(conn: &Connection, new: &NewBuild) -> StoreResult<Build> {
    check_new_build(new)?;
    catalog::require(conn, CatalogKind::Platform, &new.platform)?;
    catalog::require(conn, CatalogKind::Os, &new.os)?;
    catalog::require(conn, CatalogKind::ImageType, &new.image_type)?;
    let at = now();
    let number = match &new.number {
        Some(chosen) => {
            if rows::exists(conn, sql::BUILD_ID_BY_NUMBER, [chosen.as_str()])? {
                return Err(StoreError::AlreadyExists { what: "build number", key: chosen.to_string() });
            }
            chosen.clone()
        }
        None => next_number(conn, &build_number_stem(new, at))?,
    };
    // The id's time field is the build's creation time; its random bits come from a
    // UUIDv7, whose generator is randomly seeded in every process.
    let unix_ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let id = BuildId::generate(unix_ms, uuid::Uuid::now_v7().as_u128());
    let (build, created) = Build::create(id, number, new.clone(), at);
    insert::build(conn, &build)?;
    insert::event(conn, &build.id, &created)?;
    Ok(build)
}

pub(crate) fn get(conn: &Connection, id: BuildId) -> StoreResult<Build> {
    rows::first(conn, sql::SELECT_BUILD_BY_ID, [id.to_string()], rows::build)?
        .ok_or_else(|| StoreError::BuildNotFound(id.to_string()))
}

/// `BuildNotFound` unless the build exists.
pub(crate) fn require(conn: &Connection, id: BuildId) -> StoreResult<()> {
    if rows::exists(conn, sql::BUILD_EXISTS, [id.to_string()])? {
        Ok(())
    } else {
        Err(StoreError::BuildNotFound(id.to_string()))
    }
}

/// An exact id, an exact number, or a unique prefix of either.
pub(crate) fn find(conn: &Connection, reference: &str) -> StoreResult<Build> {
    let reference = reference.trim();
    if let Ok(id) = reference.parse::<BuildId>()
        && let Some(b) = rows::first(conn, sql::SELECT_BUILD_BY_ID, [id.to_string()], rows::build)?
    {
        return Ok(b);
    }
    if let Some(b) = rows::first(conn, sql::SELECT_BUILD_BY_NUMBER, [reference], rows::build)? {
        return Ok(b);
    }
    // Ids are stored lowercase; numbers are lowercase by construction. A reference
    // that is not printable ASCII has no range and matches nothing (empty range).
    let id_prefix = reference.to_ascii_lowercase();
    let id_upper = prefix_upper_bound(&id_prefix).unwrap_or_default();
    let number_upper = prefix_upper_bound(reference).unwrap_or_default();
    let candidates = rows::all(
        conn,
        sql::PREFIX_CANDIDATES,
        rusqlite::params![id_prefix, id_upper, reference, number_upper],
        rows::id_and_number,
    )?;
    let id = resolve_candidates(reference, &candidates)?;
    get(conn, id)
}

/// Builds matching every condition of `filter`, newest first. The query is assembled
/// from fixed condition texts; the values are bound.
pub(crate) fn list(conn: &Connection, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
    let mut conditions: Vec<&'static str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut when = |condition: &'static str, value: Option<Value>| {
        if let Some(v) = value {
            conditions.push(condition);
            values.push(v);
        }
    };
    when("status = ?", filter.status.map(|s| Value::Text(s.as_str().to_owned())));
    when("platform = ?", filter.platform.as_ref().map(|n| Value::Text(n.to_string())));
    when("os = ?", filter.os.as_ref().map(|n| Value::Text(n.to_string())));
    when("image_type = ?", filter.image_type.as_ref().map(|n| Value::Text(n.to_string())));
    when("state = ?", filter.state.map(|s| Value::Integer(i64::from(s.get()))));
    when("created_at >= ?", filter.since.map(|t| Value::Integer(t.as_microsecond())));
    when("needs_intervention = ?", filter.needs_intervention.map(|b| Value::Integer(i64::from(b))));
    let mut query = String::from(sql::SELECT_BUILDS);
    if !conditions.is_empty() {
        query.push_str(" WHERE ");
        query.push_str(&conditions.join(" AND "));
    }
    query.push_str(" ORDER BY created_at DESC, id DESC");
    if let Some(limit) = filter.limit {
        query.push_str(" LIMIT ?");
        values.push(Value::Integer(to_i64("limit", limit as u64)?));
    }
    rows::all(conn, &query, rusqlite::params_from_iter(values), rows::build)
}

/// A transition, in the caller's write transaction: the fencing check and the rules run
/// on the build row and lease record as stored (read under the same write lock, so a
/// take-over cannot slip in between the check and the write), and the row is swapped
/// only if still at the version read.
pub(crate) fn apply(conn: &Connection, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
    let build = get(conn, id)?;
    let lease = leases::record(conn, id)?;
    let outcome = plan_transition(&build, lease.as_ref().and_then(LeaseRecord::held), command, guard, now())?;
    if !insert::outcome(conn, build.version, &outcome)? {
        // Unreachable while the write lock is held from the read on; kept as the
        // compare-and-swap's safety net should the transaction mode ever change.
        let found = get(conn, id)?.version;
        return Err(StoreError::Conflict { build: build.number, expected: build.version, found });
    }
    Ok(outcome)
}

pub(crate) fn history(conn: &Connection, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
    require(conn, id)?;
    rows::all(conn, sql::SELECT_EVENTS, [id.to_string()], rows::event)
}
