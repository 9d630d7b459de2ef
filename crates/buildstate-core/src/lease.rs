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

/// The fencing token of a lease: a *generation* that grows by one with every grant of a
/// build's lease (1 for the first), also after a release or a break, and a random
/// *secret* drawn for each grant.
///
/// The generation makes "the token I hold is still the current one" a sufficient test
/// of ownership; the secret makes a token impossible to guess and useless on any other
/// build. With plain counters nearly every token was 1, so a step of build A that
/// inherited `BUILDSTATE_LEASE_TOKEN=1` could write to build B while another runner
/// held B.
///
/// Both live in one non-negative 64-bit integer, the generation in the high bits (so
/// tokens of one build still only ever increase) and 40 random bits below, because
/// every backend stores it as a signed 64-bit integer. `Display` shows only the
/// generation (`#4`), so that listings and messages never leak a usable token; the
/// runner hands its step the full value ([`LeaseToken::get`]).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct LeaseToken(u64);

const SECRET_BITS: u32 = 40;
const SECRET_MASK: u64 = (1 << SECRET_BITS) - 1;
/// Generations stop here so the token stays below 2^63: 8 million grants of one build.
const MAX_GENERATION: u64 = (1 << (63 - SECRET_BITS)) - 1;

impl LeaseToken {
    /// The token of a build's first lease, with a fresh `secret` (random bits).
    pub const fn first(secret: u64) -> Self {
        LeaseToken((1 << SECRET_BITS) | (secret & SECRET_MASK))
    }

    /// The token as stored and as passed to a step (`BUILDSTATE_LEASE_TOKEN`).
    pub const fn new(raw: u64) -> Self {
        LeaseToken(raw)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The same generation without the secret: what a lease held by somebody else looks
    /// like to a client of the HTTP API, which must never be able to write under it.
    pub const fn redacted(self) -> Self {
        LeaseToken(self.0 & !SECRET_MASK)
    }

    /// The redacted token of a generation: a lease as listed by the HTTP API, which
    /// answers only its generation.
    pub const fn of_generation(generation: u64) -> Self {
        LeaseToken(generation << SECRET_BITS)
    }

    /// Which grant of the build's lease this is: 1, 2, 3, …
    pub const fn generation(self) -> u64 {
        self.0 >> SECRET_BITS
    }

    /// The token of the next grant, with a fresh `secret`; `None` only when the
    /// generations are exhausted.
    pub fn next(self, secret: u64) -> Option<LeaseToken> {
        let generation = self.generation().checked_add(1).filter(|g| *g <= MAX_GENERATION)?;
        Some(LeaseToken((generation << SECRET_BITS) | (secret & SECRET_MASK)))
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.generation())
    }
}

/// A lease held on a build: who runs it and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

    /// `owner@host (pid N)`, how messages name the holder; an owner that already names
    /// the host (the default actor is `$USER@hostname`) is not given it twice.
    pub fn holder(&self) -> String {
        if self.owner.ends_with(&format!("@{}", self.host)) {
            return format!("{} (pid {})", self.owner, self.pid);
        }
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
    fn generations_count_up_secrets_differ_and_only_generations_print() {
        let first = LeaseToken::first(0xdead_beef);
        assert_eq!(first.generation(), 1);
        let second = first.next(0x1234).expect("next");
        assert_eq!(second.generation(), 2);
        assert!(first < second, "tokens of one build only increase, whatever the secrets");
        assert!(first.next(u64::MAX).expect("next") > first);
        assert_ne!(LeaseToken::first(1), LeaseToken::first(2), "the secret is part of the token");
        assert_eq!(second.to_string(), "#2", "Display never shows the secret");
        assert!(i64::try_from(LeaseToken::first(u64::MAX).get()).is_ok(), "fits a signed 64-bit column");
        let last = LeaseToken::new(MAX_GENERATION << SECRET_BITS);
        assert_eq!(last.next(7), None, "exhausted, not wrapped");
        assert!(i64::try_from(last.get() | SECRET_MASK).is_ok());
        // A token from before secrets (a plain counter) still moves forward.
        assert!(LeaseToken::new(3).next(9).expect("next") > LeaseToken::new(3));
        assert_eq!(serde_json::to_string(&LeaseToken::new(7)).ok().as_deref(), Some("7"));
    }

    #[test]
    fn a_lease_expires_at_its_expiry() {
        let lease = Lease {
            build_id: BuildId::generate(1_000, 0),
            owner: "ci".into(),
            host: "worker-1".into(),
            pid: 42,
            token: LeaseToken::first(1),
            acquired_at: at(100),
            renewed_at: at(100),
            expires_at: at(130),
        };
        assert!(!lease.is_expired(at(129)));
        assert!(lease.is_expired(at(130)), "the expiry instant itself is expired");
        assert!(lease.is_expired(at(200)));
        assert_eq!(lease.holder(), "ci@worker-1 (pid 42)");
        let default_actor = Lease { owner: "ci@worker-1".into(), ..lease };
        assert_eq!(default_actor.holder(), "ci@worker-1 (pid 42)", "the host is not named twice");
    }
}
