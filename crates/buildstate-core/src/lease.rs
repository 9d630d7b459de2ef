//! Leases: which runner is running a build, until when, and under which fencing token.
//!
//! A runner leases a build before it runs it and renews the lease by heartbeat. Another
//! runner may take the build over only once the lease has expired (or was released or
//! broken); each take-over gets a larger [`LeaseToken`]. Writes that carry a token are
//! accepted only while that token is the build's current one, so a runner that was
//! paused past its expiry (a stopped VM, a GC pause, a partition) cannot overwrite what
//! its successor recorded when it wakes up: the token, not the clock, decides.
//!
//! Pure data: the store reads the clock and applies the rules.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::BuildId;

/// The fencing token of a lease. Every grant of a build's lease gets a larger token than
/// the one before (1 for the first), also after a release or a break, so that "the
/// token I hold is still the current one" is a sufficient test of ownership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseToken(u64);

impl LeaseToken {
    /// The token of a build's first lease.
    pub const FIRST: LeaseToken = LeaseToken(1);

    pub const fn new(n: u64) -> Self {
        LeaseToken(n)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The token of the next grant; `None` only when the counter is exhausted
    /// (2^64 - 1 take-overs of one build).
    pub fn next(self) -> Option<LeaseToken> {
        self.0.checked_add(1).map(LeaseToken)
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A lease held on a build: who runs it and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub build_id: BuildId,
    /// Who runs the build (a user, a CI job, a runner name).
    pub owner: String,
    /// The machine the runner runs on.
    pub host: String,
    /// The runner's process id on `host`, so that a person can find it.
    pub pid: u32,
    pub token: LeaseToken,
    /// When this token was granted (renewals keep it).
    pub acquired_at: Timestamp,
    /// The last heartbeat (equal to `acquired_at` until the first renewal).
    pub renewed_at: Timestamp,
    /// From this instant on, another runner may take the build over.
    pub expires_at: Timestamp,
}

impl Lease {
    /// Expired at `now`: the holder missed its heartbeats, and the build may be taken
    /// over. The holder's token stays valid until somebody actually does.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// `owner@host (pid N)`, how messages name the holder.
    pub fn holder(&self) -> String {
        format!("{}@{} (pid {})", self.owner, self.host, self.pid)
    }
}

/// What a runner asks for when it leases a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRequest {
    pub owner: String,
    pub host: String,
    pub pid: u32,
    /// How long the lease lasts without a heartbeat.
    pub ttl: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("valid time")
    }

    #[test]
    fn tokens_count_up_and_print_as_numbers() {
        assert_eq!(LeaseToken::FIRST.get(), 1);
        assert_eq!(LeaseToken::FIRST.next(), Some(LeaseToken::new(2)));
        assert_eq!(LeaseToken::new(u64::MAX).next(), None);
        assert!(LeaseToken::new(3) < LeaseToken::new(4));
        assert_eq!(LeaseToken::new(7).to_string(), "7");
        assert_eq!(serde_json::to_string(&LeaseToken::new(7)).ok().as_deref(), Some("7"));
    }

    #[test]
    fn a_lease_expires_at_its_expiry() {
        let lease = Lease {
            build_id: BuildId::generate(1_000, 0),
            owner: "ci".into(),
            host: "worker-1".into(),
            pid: 42,
            token: LeaseToken::FIRST,
            acquired_at: at(100),
            renewed_at: at(100),
            expires_at: at(130),
        };
        assert!(!lease.is_expired(at(129)));
        assert!(lease.is_expired(at(130)), "the expiry instant itself is expired");
        assert!(lease.is_expired(at(200)));
        assert_eq!(lease.holder(), "ci@worker-1 (pid 42)");
    }
}
