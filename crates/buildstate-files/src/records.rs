//! What hangs off a build besides its history: failure records and artifacts.

use std::cmp::Reverse;

use buildstate_core::{Artifact, BuildId, FailureRecord};
use buildstate_store::{FailureFilter, StoreError, StoreResult, check_artifact, now};
use jiff::Timestamp;

use crate::snapshot::{Snapshot, Txn};

/// Failure records matching every condition of `filter`, newest first (ties: larger
/// number, then larger build id, first — as the SQLite backend orders them).
pub(crate) fn failures(snap: &Snapshot<'_>, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
    let mut records: Vec<FailureRecord> = match filter.build {
        Some(id) => snap.build(id)?.failures,
        None => {
            let entries = snap.entries()?;
            snap.all(&entries)?.into_iter().flat_map(|p| p.failures).collect()
        }
    };
    records.retain(|f| {
        !(filter.unresolved_only && f.resolved)
            && filter.state.is_none_or(|s| f.state == s)
            && filter.failure_type.as_ref().is_none_or(|t| &f.info.failure_type == t)
    });
    records.sort_by_key(|f| Reverse((f.at, f.number, f.build_id)));
    if let Some(limit) = filter.limit {
        records.truncate(limit);
    }
    Ok(records)
}

/// Resolves failure `number`, or every unresolved failure, of a build. Returns the
/// records it changed; an already resolved record keeps its notes and is not returned.
/// Resolving is a change of the build: its version moves.
pub(crate) fn resolve(
    tx: &Txn<'_>,
    id: BuildId,
    number: Option<u32>,
    notes: &str,
    guard: buildstate_store::Guard,
) -> StoreResult<Vec<FailureRecord>> {
    let mut parts = tx.build(id)?;
    let lease = tx.lease(id)?;
    buildstate_store::check_guard(
        &parts.build,
        lease.as_ref().and_then(buildstate_store::LeaseRecord::held),
        guard,
        now(),
    )?;
    if let Some(n) = number
        && !parts.failures.iter().any(|f| f.number == n)
    {
        return Err(StoreError::FailureNotFound { build: parts.build.number, number: n });
    }
    let at = now();
    let mut changed = Vec::new();
    for f in parts.failures.iter_mut().filter(|f| number.is_none_or(|n| f.number == n)) {
        if f.resolve(notes, at) {
            changed.push(f.clone());
        }
    }
    if !changed.is_empty() {
        bump_version(&mut parts.build, at);
        tx.save_build(&parts)?;
    }
    Ok(changed)
}

/// Records an artifact, replacing one of the same name in place (keeping its position
/// in the list), and bumps the build's version.
pub(crate) fn add_artifact(
    tx: &Txn<'_>,
    id: BuildId,
    artifact: &Artifact,
    guard: buildstate_store::Guard,
) -> StoreResult<()> {
    check_artifact(artifact)?;
    let mut parts = tx.build(id)?;
    let lease = tx.lease(id)?;
    buildstate_store::check_guard(
        &parts.build,
        lease.as_ref().and_then(buildstate_store::LeaseRecord::held),
        guard,
        now(),
    )?;
    // Stored times are whole microseconds in every backend (see `buildstate_store::now`).
    let artifact = Artifact { created_at: whole_micros(artifact.created_at), ..artifact.clone() };
    match parts.artifacts.iter_mut().find(|a| a.name == artifact.name) {
        Some(existing) => *existing = artifact,
        None => parts.artifacts.push(artifact),
    }
    bump_version(&mut parts.build, now());
    tx.save_build(&parts)
}

pub(crate) fn artifacts(snap: &Snapshot<'_>, id: BuildId) -> StoreResult<Vec<Artifact>> {
    Ok(snap.build(id)?.artifacts)
}

/// Marks a change that is not a transition (failure resolved, artifact recorded).
fn bump_version(build: &mut buildstate_core::Build, at: Timestamp) {
    build.version += 1;
    build.updated_at = at;
}

fn whole_micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}
