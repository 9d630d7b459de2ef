//! Holding a build's lease for as long as a runner works on it.
//!
//! The lease is renewed every third of its time to live, and at least every
//! [`MAX_HEARTBEAT`]. If a renewal finds that the token went stale (another runner took
//! the build over, or a person broke the lease), the keeper raises `lost`: the
//! dispatcher then stops the step and writes nothing more — the store would refuse it
//! anyway (fencing). The cap is what makes `lease break` under a live runner stop its
//! step within seconds, not a third of a long ttl later.

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
    superseded: Option<Lease>,
}

/// The longest pause between heartbeats, whatever the ttl.
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(2);

impl LeaseKeeper {
    /// Takes the build's lease (or fails with `LeaseHeld` naming the holder) and starts
    /// the heartbeat. A lease held by a process of this host that no longer exists (a
    /// runner killed with SIGKILL) is taken over at once instead of after its ttl; the
    /// keeper remembers whose lease it superseded ([`LeaseKeeper::superseded`]).
    pub async fn acquire(
        store: Arc<dyn Store>,
        build: BuildId,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseKeeper, StoreError> {
        let request =
            LeaseRequest { owner: owner.to_owned(), host: hostname(), pid: std::process::id(), ttl };
        let (lease, superseded) = match store.acquire_lease(build, &request).await {
            Ok(lease) => (lease, None),
            Err(StoreError::LeaseHeld { lease: held, .. }) if holder_is_gone(&held) => {
                let lease = store.take_over_lease(build, &request, held.token).await?;
                tracing::info!(%build, holder = %held.holder(), "took over the lease of a runner that is gone");
                (lease, Some(*held))
            }
            Err(e) => return Err(e),
        };
        let (lost_tx, lost) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(store.clone(), build, lease.token, ttl, lost_tx));
        Ok(LeaseKeeper { store, build, lease, lost, heartbeat, superseded })
    }

    /// The dead runner's lease this keeper took over at once, if it did.
    pub fn superseded(&self) -> Option<&Lease> {
        self.superseded.as_ref()
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
    let period = (ttl / 3).clamp(Duration::from_millis(50), MAX_HEARTBEAT);
    // When the last renewal that went through was sent: the store's expiry is at least
    // a ttl after it (its clock read the time after we sent), so a runner that stops
    // once a ttl has passed since stops no later than its lease ends.
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        let sent = std::time::Instant::now();
        match store.renew_lease(build, token, ttl).await {
            Ok(_) => renewed = sent,
            Err(StoreError::StaleLease { .. }) => {
                tracing::warn!(%build, %token, "lease lost to another runner; stopping this build");
                let _ = lost.send(true);
                return;
            }
            // A server that no longer takes this runner's token will not take it on
            // the next try either.
            Err(e @ StoreError::Denied { .. }) => {
                tracing::warn!(%build, error = %e, "the lease cannot be renewed; stopping this build");
                let _ = lost.send(true);
                return;
            }
            // A store that cannot be reached for the lease's whole ttl: another runner
            // may be taking the build over now, and must not find this one still at
            // it (a server or database down would otherwise let both run).
            Err(e) if sent.duration_since(renewed) + period >= ttl => {
                tracing::warn!(%build, error = %e, "could not renew the lease before it expires; stopping this build");
                let _ = lost.send(true);
                return;
            }
            // A busy or briefly unreachable store: keep trying.
            Err(e) => tracing::warn!(%build, error = %e, "could not renew the lease; retrying"),
        }
    }
}

/// Whether `lease` is held by a process of this machine that no longer exists. Only then
/// is it safe to supersede the lease before it expires: a holder on another machine may
/// be alive behind a partition, and only its ttl can tell.
pub fn holder_is_gone(lease: &Lease) -> bool {
    lease.host == hostname() && lease.pid != std::process::id() && !pid_alive(lease.pid)
}

/// Whether a process with this pid exists here (signal 0 delivers nothing, it only
/// checks; EPERM means it exists under another user).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(errno) => errno != nix::errno::Errno::ESRCH,
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
