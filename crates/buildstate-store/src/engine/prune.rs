//! Retention: a finished build deleted with everything that hangs off it.

use buildstate_core::{BuildDocument, BuildId, BuildStatus};

use super::{Tx, builds, documents};
use crate::{FailureFilter, LeaseRecord, PruneRule, StoreResult};

/// Deletes the build in this (write) transaction if, as stored here, it still
/// qualifies under `rule`; returns what was deleted, as its document. The rule is
/// judged on what the write lock protects — the build row, its lease record and its
/// failures — so that no runner can take the build up, and nobody can rewind or retry
/// it, between the check and the delete. `None` (nothing written) when it no longer
/// qualifies: a candidate that changed since the caller chose it is not an error.
pub(crate) async fn prune(
    tx: &mut dyn Tx,
    id: BuildId,
    rule: &PruneRule,
) -> StoreResult<Option<BuildDocument>> {
    let build = builds::get(tx, id).await?;
    let lease = tx.lease(id).await?;
    // Only a failed build is kept by its unresolved failures: those of a delivered or
    // cancelled build were retried past or given up on.
    let unresolved = if build.status == BuildStatus::Failed {
        let open = FailureFilter { build: Some(id), unresolved_only: true, ..FailureFilter::default() };
        tx.failures(&open).await?.len()
    } else {
        0
    };
    if !rule.qualifies(&build, lease.as_ref().and_then(LeaseRecord::held), unresolved) {
        return Ok(None);
    }
    let document = documents::export(tx, id).await?;
    // The lease record goes too: a pruned build is gone for good, and a later import of
    // its document is a new build whose tokens may start again.
    super::stats::forget(tx, &build).await?;
    tx.delete_build(id).await?;
    Ok(Some(document))
}
