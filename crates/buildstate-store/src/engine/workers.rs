//! The worker registry: who is out there, idle or busy, and who stopped beating. Every
//! time comes from the store's clock ([`Tx::now`]), like lease expiry, so that workers
//! whose clocks disagree are still judged alike. Nothing here touches a build: a
//! heartbeat is not a change of one.

use std::time::Duration;

use buildstate_core::{WorkerBeat, WorkerRecord};
use jiff::{SignedDuration, Timestamp};

use super::Tx;
use crate::{StoreResult, check_worker_beat};

/// Records of workers not heard from for this long are dropped when a worker starts, so
/// that a fleet whose workers are named after their pids keeps a bounded registry.
pub const FORGET_WORKERS_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The workers seen within a window, and the store's clock they were judged by (ages
/// and staleness are `now` minus `last_seen`, both the store's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerList {
    pub now: Timestamp,
    /// By name.
    pub workers: Vec<WorkerRecord>,
}

/// Writes the worker's record as of now; returns the record as it was.
pub(crate) async fn beat(tx: &mut dyn Tx, beat: &WorkerBeat) -> StoreResult<Option<WorkerRecord>> {
    check_worker_beat(beat)?;
    let now = tx.now().await?;
    if beat.starting {
        tx.forget_workers(before(now, FORGET_WORKERS_AFTER)).await?;
    }
    let stored = tx.worker(&beat.name).await?;
    tx.put_worker(&WorkerRecord::after_beat(stored.as_ref(), beat, now)).await?;
    Ok(stored)
}

/// Marks the worker exited, unless its record is another process's by now.
pub(crate) async fn exited(tx: &mut dyn Tx, beat: &WorkerBeat) -> StoreResult<()> {
    check_worker_beat(beat)?;
    let now = tx.now().await?;
    if let Some(record) = tx.worker(&beat.name).await?.and_then(|r| WorkerRecord::after_exit(&r, beat, now)) {
        tx.put_worker(&record).await?;
    }
    Ok(())
}

pub(crate) async fn list(tx: &mut dyn Tx, within: Duration) -> StoreResult<WorkerList> {
    let now = tx.now().await?;
    let mut workers = tx.workers_seen_since(before(now, within)).await?;
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(WorkerList { now, workers })
}

/// `now - window`, or the earliest time there is.
fn before(now: Timestamp, window: Duration) -> Timestamp {
    SignedDuration::try_from(window).ok().and_then(|w| now.checked_sub(w).ok()).unwrap_or(Timestamp::MIN)
}
