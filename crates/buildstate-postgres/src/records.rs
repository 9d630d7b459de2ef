//! What hangs off a build besides its history: failure records and artifacts.

use buildstate_core::{Artifact, BuildId, FailureRecord};
use buildstate_store::{FailureFilter, StoreError, StoreResult};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::error::to_i64;
use crate::rows::{self, execute};
use crate::{builds, insert, sql};

/// Failure records matching every condition of `filter`, newest first.
pub(crate) async fn failures(
    tx: &Transaction<'_>,
    filter: &FailureFilter,
) -> StoreResult<Vec<FailureRecord>> {
    if let Some(id) = filter.build {
        builds::require(tx, id).await?;
    }
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(id) = filter.build {
        values.push(Box::new(*id.as_uuid()));
        conditions.push(format!("build_id = ${}", values.len()));
    }
    if filter.unresolved_only {
        conditions.push("NOT resolved".to_owned());
    }
    if let Some(state) = filter.state {
        values.push(Box::new(i16::from(state.get())));
        conditions.push(format!("state = ${}", values.len()));
    }
    if let Some(t) = &filter.failure_type {
        values.push(Box::new(t.as_str().to_owned()));
        conditions.push(format!("failure_type = ${}", values.len()));
    }
    let mut query = String::from(sql::SELECT_FAILURES);
    if !conditions.is_empty() {
        query.push_str(" WHERE ");
        query.push_str(&conditions.join(" AND "));
    }
    query.push_str(" ORDER BY at DESC, number DESC, build_id DESC");
    if let Some(limit) = filter.limit {
        values.push(Box::new(to_i64("limit", limit as u64)?));
        query.push_str(&format!(" LIMIT ${}", values.len()));
    }
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
    rows::all(tx, &query, &params, rows::failure).await
}

/// Resolves failure `number`, or every unresolved failure, of a build. Returns the
/// records it changed; an already resolved record keeps its notes and is not returned.
/// Resolving is a change of the build: its version moves.
pub(crate) async fn resolve(
    tx: &Transaction<'_>,
    id: BuildId,
    number: Option<u32>,
    notes: &str,
) -> StoreResult<Vec<FailureRecord>> {
    let build = builds::lock(tx, id).await?;
    let targets = match number {
        Some(n) => {
            match rows::first(tx, sql::SELECT_FAILURE, &[id.as_uuid(), &i64::from(n)], rows::failure).await? {
                Some(f) => vec![f],
                None => return Err(StoreError::FailureNotFound { build: build.number, number: n }),
            }
        }
        None => rows::all(tx, sql::SELECT_UNRESOLVED_FAILURES, &[id.as_uuid()], rows::failure).await?,
    };
    let at = rows::clock(tx).await?;
    let mut changed = Vec::new();
    for mut f in targets {
        if f.resolve(notes, at) {
            execute(
                tx,
                sql::RESOLVE_FAILURE,
                &[id.as_uuid(), &i64::from(f.number), &f.resolution, &f.resolved_at],
                "resolve a failure",
            )
            .await?;
            changed.push(f);
        }
    }
    if !changed.is_empty() {
        insert::bump_version(tx, &id, at).await?;
    }
    Ok(changed)
}

/// Records an artifact, replacing one of the same name, and bumps the build's version.
/// The build's row is locked first, so concurrent adds to one build queue and each
/// bumps the version once.
pub(crate) async fn add_artifact(tx: &Transaction<'_>, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
    buildstate_store::check_artifact(artifact)?;
    builds::lock(tx, id).await?;
    insert::artifact(tx, &id, artifact).await?;
    let at = rows::clock(tx).await?;
    insert::bump_version(tx, &id, at).await
}

pub(crate) async fn artifacts(tx: &Transaction<'_>, id: BuildId) -> StoreResult<Vec<Artifact>> {
    builds::require(tx, id).await?;
    rows::all(tx, sql::SELECT_ARTIFACTS, &[id.as_uuid()], |r| rows::artifact(&id, r)).await
}
