//! Builds: create, read, find, list, and transitions.

use std::cmp::Reverse;

use buildstate_core::{
    Build, BuildId, BuildNumber, BuildParts, CatalogKind, Command, HistoryEvent, NewBuild, Outcome,
};
use buildstate_store::{
    BuildFilter, Guard, LeaseRecord, StoreError, StoreResult, build_number_stem, check_new_build, now,
    plan_transition, resolve_candidates,
};

use crate::catalog;
use crate::layout::check_number;
use crate::numbers::{next_number, prefix_candidates};
use crate::snapshot::{Snapshot, Txn};

/// Creates a build under the exclusive lock: the catalog check, the number allocation
/// and the write see no other writer in between, which is what keeps numbers unique for
/// creates in the same second.
pub(crate) fn create(tx: &Txn<'_>, new: &NewBuild) -> StoreResult<Build> {
    check_new_build(new)?;
    let cat = tx.catalog()?;
    catalog::require(&cat, CatalogKind::Platform, &new.platform)?;
    catalog::require(&cat, CatalogKind::Os, &new.os)?;
    catalog::require(&cat, CatalogKind::ImageType, &new.image_type)?;
    let at = now();
    let mut entries = tx.entries()?;
    let number = match &new.number {
        Some(chosen) => {
            if entries.id_of(chosen).is_some() {
                return Err(StoreError::AlreadyExists { what: "build number", key: chosen.to_string() });
            }
            check_number(chosen)?;
            chosen.clone()
        }
        None => next_number(&entries, &build_number_stem(new, at))?,
    };
    // The id's time field is the build's creation time; its random bits come from a
    // UUIDv7, whose generator is randomly seeded in every process.
    let unix_ms = u64::try_from(at.as_millisecond()).unwrap_or(0);
    let id = BuildId::generate(unix_ms, uuid::Uuid::now_v7().as_u128());
    let (build, created) = Build::create(id, number, new.clone(), at);
    let parts = BuildParts {
        build,
        provider: cat.provider(&new.platform),
        history: vec![created],
        failures: Vec::new(),
        artifacts: Vec::new(),
    };
    // The document first, then the index: a crash in between leaves a document the
    // index does not cover yet, which the next transaction reads and indexes.
    tx.save_build(&parts)?;
    entries.insert(parts.build.number.clone(), id);
    tx.save_index(&entries)?;
    Ok(parts.build)
}

pub(crate) fn get(snap: &Snapshot<'_>, id: BuildId) -> StoreResult<Build> {
    Ok(snap.build(id)?.build)
}

/// An exact id, an exact number, or a unique prefix of either.
pub(crate) fn find(snap: &Snapshot<'_>, reference: &str) -> StoreResult<Build> {
    let reference = reference.trim();
    let entries = snap.entries()?;
    if let Ok(id) = reference.parse::<BuildId>()
        && let Some(number) = entries.number_of(id)
    {
        return Ok(snap.load(number, id)?.build);
    }
    if let Ok(number) = BuildNumber::new(reference)
        && let Some(id) = entries.id_of(&number)
    {
        return Ok(snap.load(&number, id)?.build);
    }
    let candidates = prefix_candidates(&entries, reference);
    let id = resolve_candidates(reference, &candidates)?;
    get(snap, id)
}

/// Builds matching every condition of `filter`, newest first (ties: larger id first).
pub(crate) fn list(snap: &Snapshot<'_>, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
    let entries = snap.entries()?;
    let mut builds: Vec<Build> = snap
        .all(&entries)?
        .into_iter()
        .map(|p| p.build)
        .filter(|b| {
            filter.status.is_none_or(|s| b.status == s)
                && filter.platform.as_ref().is_none_or(|p| &b.platform == p)
                && filter.os.as_ref().is_none_or(|o| &b.os == o)
                && filter.image_type.as_ref().is_none_or(|i| &b.image_type == i)
                && filter.state.is_none_or(|s| b.state == s)
                && filter.since.is_none_or(|t| b.created_at >= t)
                && filter.needs_intervention.is_none_or(|n| b.needs_intervention == n)
        })
        .collect();
    builds.sort_by_key(|b| Reverse((b.created_at, b.id)));
    if let Some(limit) = filter.limit {
        builds.truncate(limit);
    }
    Ok(builds)
}

/// A transition under the exclusive lock: the fencing check and the rules run on the
/// document and lease record as stored (read under the same lock, so a take-over cannot
/// slip in between the check and the write).
pub(crate) fn apply(tx: &Txn<'_>, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
    let mut parts = tx.build(id)?;
    let lease = tx.lease(id)?;
    let outcome =
        plan_transition(&parts.build, lease.as_ref().and_then(LeaseRecord::held), command, guard, now())?;
    parts.build = outcome.build.clone();
    parts.history.extend(outcome.events.iter().cloned());
    parts.failures.extend(outcome.failures.iter().cloned());
    tx.save_build(&parts)?;
    Ok(outcome)
}

pub(crate) fn history(snap: &Snapshot<'_>, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
    Ok(snap.build(id)?.history)
}
