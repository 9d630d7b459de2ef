//! A fleet worker's record in the store's worker registry, kept while it works: written
//! when the worker starts, on every heartbeat, whenever it takes or finishes a build (as
//! the dispatcher reports them), and marked exited when it stops cleanly. A worker that
//! is killed stops beating, and `buildstate workers` flags it stale after
//! [`buildstate_core::STALE_HEARTBEATS`] heartbeats.
//!
//! The registry is for people looking at the fleet: a write that fails (a busy or
//! briefly unreachable store) is logged and tried again at the next beat, never a reason
//! to stop a build.

use std::sync::Arc;
use std::time::Duration;

use buildstate_core::{BuildId, WorkerBeat};
use buildstate_store::Store;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Progress;
use super::keeper::hostname;

/// How often a worker beats: a third of its lease ttl, like a lease's heartbeat, but
/// between 1 s and 10 s — the registry only has to tell people who is there. With the
/// default 60 s ttl that is every 10 s, and stale after 30 s of silence.
pub fn worker_heartbeat(lease_ttl: Duration) -> Duration {
    (lease_ttl / 3).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// The worker's presence in the registry, until [`Presence::exit`].
pub(super) struct Presence {
    store: Arc<dyn Store>,
    beat: WorkerBeat,
    stop: oneshot::Sender<()>,
    beating: JoinHandle<()>,
}

impl Presence {
    /// Records the worker (its first beat) and starts beating. Returns the presence and
    /// the sender the dispatcher reports its progress to: picked-up and finished builds
    /// become the record's current build, and everything goes on to `progress`.
    pub(super) async fn start(
        store: Arc<dyn Store>,
        name: &str,
        heartbeat: Duration,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> (Presence, mpsc::UnboundedSender<Progress>) {
        let beat = WorkerBeat {
            name: name.to_owned(),
            host: hostname(),
            pid: std::process::id(),
            heartbeat,
            build: None,
            starting: true,
        };
        match store.worker_beat(&beat).await {
            Ok(Some(before))
                if before.exited_at.is_none()
                    && (before.pid, before.host.as_str()) != (beat.pid, beat.host.as_str())
                    && !before.is_stale(buildstate_store::now()) =>
            {
                tracing::warn!(
                    worker = name,
                    other_host = %before.host,
                    other_pid = before.pid,
                    "another worker of this name beat moments ago; if it is still running, give each worker its own --name, or `buildstate workers` shows only one of them"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                worker = name,
                error = %e,
                "could not record this worker in the store's registry; retrying at the next heartbeat"
            ),
        }
        let (current_tx, current) = watch::channel(None);
        let (reports, rx) = mpsc::unbounded_channel();
        tokio::spawn(follow(rx, current_tx, progress));
        let (stop, stopped) = oneshot::channel();
        let beating = tokio::spawn(beat_until_stopped(
            store.clone(),
            WorkerBeat { starting: false, ..beat.clone() },
            current,
            stopped,
        ));
        (Presence { store, beat, stop, beating }, reports)
    }

    /// Stops beating (a beat under way finishes first, so it cannot land after the
    /// exit) and marks the worker exited.
    pub(super) async fn exit(self) {
        let _ = self.stop.send(());
        let _ = self.beating.await;
        if let Err(e) = self.store.worker_exited(&self.beat).await {
            tracing::warn!(worker = %self.beat.name, error = %e, "could not record this worker's exit; it will show as stale");
        }
    }
}

/// Passes the dispatcher's progress on, noting the build the worker runs: from the
/// moment it picked the build up (its lease taken) until the build is done.
async fn follow(
    mut reports: mpsc::UnboundedReceiver<Progress>,
    current: watch::Sender<Option<BuildId>>,
    progress: mpsc::UnboundedSender<Progress>,
) {
    while let Some(report) = reports.recv().await {
        match &report {
            Progress::Picked { id, .. } => {
                current.send_replace(Some(*id));
            }
            Progress::Done(_) => {
                current.send_replace(None);
            }
            _ => {}
        }
        let _ = progress.send(report);
    }
}

/// Beats every `beat.heartbeat`, and at once when the current build changes.
async fn beat_until_stopped(
    store: Arc<dyn Store>,
    mut beat: WorkerBeat,
    mut current: watch::Receiver<Option<BuildId>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut following = true;
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => return,
            changed = current.changed(), if following => {
                // The progress stream ended: beat on the timer alone until stopped.
                following = changed.is_ok();
            }
            () = tokio::time::sleep(beat.heartbeat) => {}
        }
        beat.build = *current.borrow_and_update();
        if let Err(e) = store.worker_beat(&beat).await {
            tracing::warn!(worker = %beat.name, error = %e, "could not record this worker's heartbeat; retrying");
        }
    }
}
