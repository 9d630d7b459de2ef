//! What hangs off a build besides its history: failure records and artifacts.

use buildstate_core::{Artifact, BuildId, FailureRecord};
use buildstate_store::{FailureFilter, StoreError, StoreResult, now};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::error::{SqlContext, to_i64};
use crate::{builds, insert, rows, sql};

/// Failure records matching every condition of `filter`, newest first.
pub(crate) fn failures(conn: &Connection, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
    if let Some(id) = filter.build {
        builds::require(conn, id)?;
    }
    let mut conditions: Vec<&'static str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(id) = filter.build {
        conditions.push("build_id = ?");
        values.push(Value::Text(id.to_string()));
    }
    if filter.unresolved_only {
        conditions.push("resolved = 0");
    }
    if let Some(state) = filter.state {
        conditions.push("state = ?");
        values.push(Value::Integer(i64::from(state.get())));
    }
    if let Some(t) = &filter.failure_type {
        conditions.push("failure_type = ?");
        values.push(Value::Text(t.as_str().to_owned()));
    }
    let mut query = String::from(sql::SELECT_FAILURES);
    if !conditions.is_empty() {
        query.push_str(" WHERE ");
        query.push_str(&conditions.join(" AND "));
    }
    query.push_str(" ORDER BY at DESC, number DESC, build_id DESC");
    if let Some(limit) = filter.limit {
        query.push_str(" LIMIT ?");
        values.push(Value::Integer(to_i64("limit", limit as u64)?));
    }
    rows::all(conn, &query, rusqlite::params_from_iter(values), rows::failure)
}

/// Resolves failure `number`, or every unresolved failure, of a build. Returns the
/// records it changed; an already resolved record keeps its notes and is not returned.
pub(crate) fn resolve(
    conn: &Connection,
    id: BuildId,
    number: Option<u32>,
    notes: &str,
) -> StoreResult<Vec<FailureRecord>> {
    let build = builds::get(conn, id)?;
    let key = id.to_string();
    let targets = match number {
        Some(n) => match rows::first(conn, sql::SELECT_FAILURE, params![key, n], rows::failure)? {
            Some(f) => vec![f],
            None => {
                return Err(StoreError::FailureNotFound { build: build.number, number: n });
            }
        },
        None => rows::all(conn, sql::SELECT_UNRESOLVED_FAILURES, [&key], rows::failure)?,
    };
    let at = now();
    let mut changed = Vec::new();
    for mut f in targets {
        if f.resolve(notes, at) {
            conn.execute(
                sql::RESOLVE_FAILURE,
                params![key, f.number, f.resolution, f.resolved_at.map(|t| t.as_microsecond())],
            )
            .ctx("resolve a failure")?;
            changed.push(f);
        }
    }
    if !changed.is_empty() {
        insert::bump_version(conn, &id, at)?;
    }
    Ok(changed)
}

/// Records an artifact, replacing one of the same name, and bumps the build's version.
pub(crate) fn add_artifact(conn: &Connection, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
    buildstate_store::check_artifact(artifact)?;
    builds::require(conn, id)?;
    insert::artifact(conn, &id, artifact)?;
    insert::bump_version(conn, &id, now())
}

pub(crate) fn artifacts(conn: &Connection, id: BuildId) -> StoreResult<Vec<Artifact>> {
    builds::require(conn, id)?;
    rows::all(conn, sql::SELECT_ARTIFACTS, [id.to_string()], |r| rows::artifact(&id, r))
}
