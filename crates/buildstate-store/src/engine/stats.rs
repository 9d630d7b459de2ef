//! Keeping the attempt statistics (`report::StatRow`) of a backend that stores them,
//! in the transaction of the change: a transition adds what its events contribute, an
//! import adds its history's, and a build deleted (replaced, pruned) takes its own away.

use buildstate_core::{Build, Outcome};

use super::Tx;
use crate::StoreResult;
use crate::report::{
    DurationRow, SAVING_EVENTS, StatRow, contributions, contributions_of_tail, durations_of, resume_savings,
    savings_of_tail, sum, sum_durations,
};

/// After `outcome` was written.
pub(crate) async fn after_transition(tx: &mut dyn Tx, outcome: &Outcome) -> StoreResult<()> {
    if !tx.keeps_report_stats() || !outcome.events.iter().any(|e| SAVING_EVENTS.contains(&e.kind)) {
        return Ok(());
    }
    let b = &outcome.build;
    tx.add_duration_histogram(&sum_durations(durations_of(&outcome.events))).await?;
    if b.failure_count == 0 {
        // Never failed: nothing earlier can be recovered from or resumed after, so the
        // new events say it all.
        return tx.add_attempt_stats(&sum(contributions(b, &outcome.events))).await;
    }
    // A success may recover from failures recorded earlier, an attempt may resume after
    // one: read them (this transaction sees the events it appended).
    let history = tx.history(b.id).await?;
    let before = history.len().saturating_sub(outcome.events.len());
    tx.add_attempt_stats(&sum(contributions_of_tail(b, &history, before))).await?;
    let (resumes, saved) = savings_of_tail(&history, before);
    if resumes > 0 {
        tx.add_resume_savings(b.id, resumes, saved).await?;
    }
    Ok(())
}

/// After a whole history was stored (an import).
pub(crate) async fn remember(
    tx: &mut dyn Tx,
    b: &Build,
    history: &[buildstate_core::HistoryEvent],
) -> StoreResult<()> {
    if !tx.keeps_report_stats() {
        return Ok(());
    }
    tx.add_attempt_stats(&sum(contributions(b, history))).await?;
    tx.add_duration_histogram(&sum_durations(durations_of(history))).await?;
    let (resumes, saved) = resume_savings(history);
    if resumes > 0 {
        tx.add_resume_savings(b.id, resumes, saved).await?;
    }
    Ok(())
}

/// Before the build is deleted: takes its contributions away (its savings go with the
/// build itself).
pub(crate) async fn forget(tx: &mut dyn Tx, b: &Build) -> StoreResult<()> {
    if !tx.keeps_report_stats() {
        return Ok(());
    }
    let history = tx.history(b.id).await?;
    let negated = contributions(b, &history).into_iter().map(|r| StatRow {
        attempts: -r.attempts,
        total_ms: -r.total_ms,
        retries: -r.retries,
        ..r
    });
    tx.add_attempt_stats(&sum(negated)).await?;
    let negated = durations_of(&history).into_iter().map(|r| DurationRow {
        attempts: -r.attempts,
        total_ms: -r.total_ms,
        ..r
    });
    tx.add_duration_histogram(&sum_durations(negated)).await
}
