//! Holding a build's lease for as long as a runner works on it.
//!
//! The lease is renewed every third of its time to live. If a renewal finds that the
//! token went stale (the lease expired while this process was paused, and another
//! runner took the build over), the keeper raises `lost`: the dispatcher then stops the
//! step and writes nothing more — the store would refuse it anyway (fencing).

use std::sync::Arc;
use std::time::Duration;

use buildstate_core::{BuildId, Lease, LeaseRequest, LeaseToken};
use buildstate_store::{Guard, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct LeaseKeeper {
    store: Arc<dyn Store>,
    build: BuildId,
    lease: Lease,
    lost: watch::Receiver<bool>,
    heartbeat: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Takes the build's lease (or fails with `LeaseHeld` naming the holder) and starts
    /// the heartbeat.
    pub async fn acquire(
        store: Arc<dyn Store>,
        build: BuildId,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseKeeper, StoreError> {
        let request =
            LeaseRequest { owner: owner.to_owned(), host: hostname(), pid: std::process::id(), ttl };
        let lease = store.acquire_lease(build, &request).await?;
        let (lost_tx, lost) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(store.clone(), build, lease.token, ttl, lost_tx));
        Ok(LeaseKeeper { store, build, lease, lost, heartbeat })
    }

    pub fn token(&self) -> LeaseToken {
        self.lease.token
    }

    /// The guard every write made under this lease carries.
    pub fn guard(&self) -> Guard {
        Guard::lease(self.lease.token)
    }

    /// Becomes `true` when another runner has taken the build over.
    pub fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Stops the heartbeat and gives the lease back (best effort: an unreleased lease
    /// simply expires).
    pub async fn release(self) {
        self.heartbeat.abort();
        if let Err(e) = self.store.release_lease(self.build, self.lease.token).await {
            tracing::warn!(build = %self.build, error = %e, "could not release the lease; it will expire");
        }
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn heartbeat(
    store: Arc<dyn Store>,
    build: BuildId,
    token: LeaseToken,
    ttl: Duration,
    lost: watch::Sender<bool>,
) {
    let period = (ttl / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(period).await;
        match store.renew_lease(build, token, ttl).await {
            Ok(_) => {}
            Err(StoreError::StaleLease { .. }) => {
                tracing::warn!(%build, %token, "lease lost to another runner; stopping this build");
                let _ = lost.send(true);
                return;
            }
            // A busy or briefly unreachable store: keep trying; if it lasts past the
            // lease's expiry, the next renewal reports it stale.
            Err(e) => tracing::warn!(%build, error = %e, "could not renew the lease; retrying"),
        }
    }
}

/// This machine's name, for lease holders and messages.
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
