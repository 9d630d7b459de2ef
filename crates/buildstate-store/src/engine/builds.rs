//! Builds: create (with numbering), read, find, list, transitions, history.

use buildstate_core::{
    Build, BuildId, BuildNumber, CatalogKind, Command, HistoryEvent, NewBuild, Outcome, invalidated_by_rewind,
};

use super::{Tx, catalog};
use crate::{
    BuildFilter, Guard, LeaseRecord, StoreError, StoreResult, build_number_stem, check_new_build,
    plan_transition, prefix_upper_bound, resolve_candidates,
};

/// Creates a build in a write transaction: the catalog check, the number allocation and
/// the insert see no other writer in between, which is what keeps numbers unique for
/// creates in the same second (a backend without locks fails the insert of a taken
/// number instead, and the unit of work runs again).
pub(crate) async fn create(tx: &mut dyn Tx, new: &NewBuild) -> StoreResult<Build> {
    check_new_build(new)?;
    catalog::require(tx, CatalogKind::Platform, &new.platform).await?;
    catalog::require(tx, CatalogKind::Os, &new.os).await?;
    catalog::require(tx, CatalogKind::ImageType, &new.image_type).await?;
    let at = tx.now().await?;
    let number = match &new.number {
        Some(chosen) => {
            if tx.build_id_by_number(chosen.as_str()).await?.is_some() {
                return Err(StoreError::AlreadyExists { what: "build number", key: chosen.to_string() });
            }
            chosen.clone()
        }
        None => next_number(tx, &build_number_stem(new, at)).await?,
    };
    // The id's time field is the build's creation time; its random bits come from a
    // UUIDv7, whose generator is randomly seeded in every process.
    let unix_ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let id = BuildId::generate(unix_ms, uuid::Uuid::now_v7().as_u128());
    let (build, created) = Build::create(id, number, new.clone(), at);
    tx.insert_build(&build).await?;
    tx.append_events(id, std::slice::from_ref(&created)).await?;
    super::webhooks::enqueue(tx, None, &build, std::slice::from_ref(&created)).await?;
    Ok(build)
}

async fn next_number(tx: &mut dyn Tx, stem: &str) -> StoreResult<BuildNumber> {
    let invalid = || StoreError::InvalidInput(format!("cannot allocate a build number under `{stem}`"));
    let next = tx.next_sequence(stem).await?.ok_or_else(invalid)?;
    BuildNumber::with_sequence(stem, next).map_err(|e| StoreError::InvalidInput(e.to_string()))
}

pub(crate) async fn get(tx: &mut dyn Tx, id: BuildId) -> StoreResult<Build> {
    tx.build(id).await?.ok_or_else(|| StoreError::BuildNotFound(id.to_string()))
}

/// An exact id, an exact number, or a unique prefix of either.
pub(crate) async fn find(tx: &mut dyn Tx, reference: &str) -> StoreResult<Build> {
    let reference = reference.trim();
    if let Ok(id) = reference.parse::<BuildId>()
        && let Some(b) = tx.build(id).await?
    {
        return Ok(b);
    }
    if let Some(id) = tx.build_id_by_number(reference).await? {
        return get(tx, id).await;
    }
    // Ids are stored lowercase; numbers are lowercase by construction. A reference that
    // is not printable ASCII matches nothing.
    let id_prefix = reference.to_ascii_lowercase();
    let candidates = if prefix_upper_bound(reference).is_some() {
        tx.prefix_candidates(&id_prefix, reference).await?
    } else {
        Vec::new()
    };
    let id = resolve_candidates(reference, &candidates)?;
    get(tx, id).await
}

pub(crate) async fn list(tx: &mut dyn Tx, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
    tx.list_builds(filter).await
}

/// A transition: the fencing check and the rules run on the build row and lease record
/// as stored (read in the same write transaction, so a take-over cannot slip in between
/// the check and the write), and the row is swapped only if still at the version read.
pub(crate) async fn apply(
    tx: &mut dyn Tx,
    id: BuildId,
    command: &Command,
    guard: Guard,
) -> StoreResult<Outcome> {
    crate::check::check_command(command)?;
    let build = get(tx, id).await?;
    let lease = tx.lease(id).await?;
    let now = tx.now().await?;
    let outcome = plan_transition(&build, lease.as_ref().and_then(LeaseRecord::held), command, guard, now)?;
    swap(tx, &outcome.build, build.version).await?;
    tx.append_events(id, &outcome.events).await?;
    tx.insert_failures(&outcome.failures).await?;
    super::webhooks::enqueue(tx, Some(&build), &outcome.build, &outcome.events).await?;
    super::stats::after_transition(tx, &outcome).await?;
    if let Command::Rewind { to, .. } = command {
        // The milestones from `to` on run again: what they produced is no longer the
        // build's, from the instant of the rewind (its event's time).
        for artifact in invalidated_by_rewind(&tx.artifacts(id).await?, *to, now) {
            tx.put_artifact(id, &artifact).await?;
        }
    }
    Ok(outcome)
}

/// Swaps the row from `expected` to `build`, or `Conflict` when another writer moved it
/// in between (unreachable under a write lock; the only defence without one).
pub(crate) async fn swap(tx: &mut dyn Tx, build: &Build, expected: u64) -> StoreResult<()> {
    if tx.swap_build(build, expected).await? {
        return Ok(());
    }
    let found = tx.build(build.id).await?.map_or(0, |b| b.version);
    Err(StoreError::Conflict { build: build.number.clone(), expected, found })
}

pub(crate) async fn history(tx: &mut dyn Tx, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
    get(tx, id).await?;
    tx.history(id).await
}
