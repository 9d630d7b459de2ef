//! What hangs off a build besides its history: failure records and artifacts.

use buildstate_core::{Artifact, BuildId, FailureRecord};
use jiff::Timestamp;

use super::{Tx, builds};
use crate::{FailureFilter, Guard, LeaseRecord, StoreError, StoreResult, check_artifact, check_guard};

pub(crate) async fn failures(tx: &mut dyn Tx, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
    if let Some(id) = filter.build {
        builds::get(tx, id).await?;
    }
    tx.failures(filter).await
}

/// Resolves failure `number`, or every unresolved failure, of a build. Returns the
/// records it changed; an already resolved record keeps its notes and is not returned.
/// Resolving is a change of the build: its version moves.
pub(crate) async fn resolve(
    tx: &mut dyn Tx,
    id: BuildId,
    number: Option<u32>,
    notes: &str,
    guard: Guard,
) -> StoreResult<Vec<FailureRecord>> {
    let build = guarded(tx, id, guard).await?;
    let all = tx.failures(&FailureFilter { build: Some(id), ..FailureFilter::default() }).await?;
    if let Some(n) = number
        && !all.iter().any(|f| f.number == n)
    {
        return Err(StoreError::FailureNotFound { build: build.number, number: n });
    }
    let at = tx.now().await?;
    let mut changed = Vec::new();
    for mut f in all.into_iter().filter(|f| number.is_none_or(|n| f.number == n)) {
        if f.resolve(notes, at) {
            tx.update_failure(&f).await?;
            changed.push(f);
        }
    }
    // Oldest first, as they were recorded.
    changed.sort_by_key(|f| f.number);
    if !changed.is_empty() {
        bump_version(tx, build, at).await?;
    }
    Ok(changed)
}

/// Records an artifact, replacing one of the same name, and bumps the build's version.
/// The artifact belongs to the milestone the build is at as stored (whatever the caller
/// thinks), which is what a later rewind judges it by.
pub(crate) async fn add_artifact(
    tx: &mut dyn Tx,
    id: BuildId,
    artifact: &Artifact,
    guard: Guard,
) -> StoreResult<()> {
    check_artifact(artifact)?;
    let build = guarded(tx, id, guard).await?;
    // Recorded by the store's clock, as the history is, so that an import can tell an
    // artifact recorded before a rewind from one recorded after it (`core::replay`).
    let at = tx.now().await?;
    let artifact =
        Artifact { created_at: at, milestone: Some(build.state), invalidated_at: None, ..artifact.clone() };
    tx.put_artifact(id, &artifact).await?;
    bump_version(tx, build, at).await
}

/// The build, once `guard` lets the write through (see [`crate::check_guard`]).
async fn guarded(tx: &mut dyn Tx, id: BuildId, guard: Guard) -> StoreResult<buildstate_core::Build> {
    let build = builds::get(tx, id).await?;
    let lease = tx.lease(id).await?;
    check_guard(&build, lease.as_ref().and_then(LeaseRecord::held), guard, tx.now().await?)?;
    Ok(build)
}

pub(crate) async fn artifacts(tx: &mut dyn Tx, id: BuildId) -> StoreResult<Vec<Artifact>> {
    builds::get(tx, id).await?;
    tx.artifacts(id).await
}

/// Marks a change that is not a transition (failure resolved, artifact recorded).
async fn bump_version(tx: &mut dyn Tx, mut build: buildstate_core::Build, at: Timestamp) -> StoreResult<()> {
    let expected = build.version;
    build.version += 1;
    build.updated_at = at;
    builds::swap(tx, &build, expected).await
}
