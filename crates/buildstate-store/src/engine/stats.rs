//! Keeping the attempt statistics (`report::StatRow`) of a backend that stores them,
//! in the transaction of the change: a transition adds what its events contribute, an
//! import adds its history's, and a build deleted (replaced, pruned) takes its own away.

use buildstate_core::{Build, Outcome};

use super::Tx;
use crate::StoreResult;
use crate::report::{STAT_EVENTS, StatRow, contributions, contributions_of_tail, sum};

/// After `outcome` was written.
pub(crate) async fn after_transition(tx: &mut dyn Tx, outcome: &Outcome) -> StoreResult<()> {
    if !tx.keeps_attempt_stats() || !outcome.events.iter().any(|e| STAT_EVENTS.contains(&e.kind)) {
        return Ok(());
    }
    let b = &outcome.build;
    let rows = if b.failure_count == 0 {
        // Never failed: nothing earlier can be recovered from, so the new events say it all.
        contributions(b, &outcome.events)
    } else {
        // A success may recover from failures recorded earlier: read them (this
        // transaction sees the events it appended).
        let history = tx.history(b.id).await?;
        let before = history.len().saturating_sub(outcome.events.len());
        contributions_of_tail(b, &history, before)
    };
    tx.add_attempt_stats(&sum(rows)).await
}

/// After a whole history was stored (an import).
pub(crate) async fn remember(
    tx: &mut dyn Tx,
    b: &Build,
    history: &[buildstate_core::HistoryEvent],
) -> StoreResult<()> {
    if !tx.keeps_attempt_stats() {
        return Ok(());
    }
    tx.add_attempt_stats(&sum(contributions(b, history))).await
}

/// Before the build is deleted: takes its contributions away.
pub(crate) async fn forget(tx: &mut dyn Tx, b: &Build) -> StoreResult<()> {
    if !tx.keeps_attempt_stats() {
        return Ok(());
    }
    let history = tx.history(b.id).await?;
    let negated = contributions(b, &history).into_iter().map(|r| StatRow {
        attempts: -r.attempts,
        total_ms: -r.total_ms,
        retries: -r.retries,
        ..r
    });
    tx.add_attempt_stats(&sum(negated)).await
}
