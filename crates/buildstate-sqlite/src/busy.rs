//! Waiting out other writers: a jittered busy handler inside SQLite, and a bounded
//! retry of whole units of work for the busy errors SQLite reports without waiting.
//!
//! SQLite's own timeout handler sleeps on a fixed schedule growing to 100 ms, so with
//! sixteen processes queueing for one write lock the same waiters keep missing it.
//! Short, randomised sleeps spread them out and keep the lock busy doing work.

use std::time::{Duration, Instant};

use buildstate_store::{StoreError, StoreResult};
use rusqlite::Connection;

use crate::error::is_busy;

/// How long a unit of work waits for locks in total before `StoreError::Busy`.
/// Generous on purpose: a user should see "busy" only when something is wrong (a
/// process holding the lock for a minute), never because sixteen runners share a file.
pub(crate) const BUSY_LIMIT: Duration = Duration::from_secs(60);

/// The longest single sleep between two lock attempts.
const MAX_SLEEP_US: u64 = 32_000;

/// A small splitmix64 generator: jitter needs decorrelation between processes, not
/// cryptographic quality.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        // The low 64 bits of a UUIDv7 are random: a different seed in every process.
        Jitter(uuid::Uuid::now_v7().as_u128() as u64)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Capped exponential backoff with jitter: between half and all of
    /// `min(1 ms · 2^attempt, 32 ms)`.
    pub(crate) fn backoff(&mut self, attempt: u32) -> Duration {
        let cap = (1_000u64 << attempt.min(5)).min(MAX_SLEEP_US);
        Duration::from_micros(cap / 2 + self.next() % (cap / 2 + 1))
    }
}

/// Replaces SQLite's timeout handler with a jittered one that waits up to `limit` for
/// each lock.
pub(crate) fn install_handler(conn: &mut Connection, limit: Duration) -> rusqlite::Result<()> {
    let mut jitter = Jitter::new();
    let mut since = Instant::now();
    conn.busy_handler(Some(move |count: i32| {
        // `count` restarts at 0 for every new lock the connection waits for.
        if count == 0 {
            since = Instant::now();
        }
        if since.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(jitter.backoff(u32::try_from(count).unwrap_or(u32::MAX)));
        true
    }))
}

/// Runs `op` until it does not fail with a busy error, for up to `limit` in total.
///
/// The busy handler covers the common case (waiting for the write lock) inside SQLite;
/// this loop covers the busy errors SQLite returns without calling it — WAL recovery,
/// switching a fresh file to WAL, creating the schema while other processes open the
/// same file — by retrying the whole unit of work, which is always safe because a unit
/// is one transaction that rolled back.
pub(crate) fn retry<T>(
    limit: Duration,
    what: &'static str,
    mut op: impl FnMut() -> StoreResult<T>,
) -> StoreResult<T> {
    let start = Instant::now();
    let mut jitter = Jitter::new();
    let mut attempt = 0u32;
    loop {
        match op() {
            Err(e) if is_busy(&e) => {
                let waited = start.elapsed();
                if waited >= limit {
                    tracing::warn!(what, waited_ms = waited.as_millis(), "sqlite store stayed busy");
                    return Err(StoreError::Busy {
                        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                    });
                }
                tracing::debug!(what, attempt, "sqlite store busy; retrying");
                std::thread::sleep(jitter.backoff(attempt));
                attempt = attempt.saturating_add(1);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy_error() -> StoreError {
        let e = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        StoreError::backend("test", e)
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let mut j = Jitter::new();
        let sleeps: Vec<Duration> = (0..200).map(|i| j.backoff(i % 10)).collect();
        assert!(sleeps.iter().all(|d| *d >= Duration::from_micros(500) && *d <= Duration::from_millis(32)));
        let distinct: std::collections::BTreeSet<_> = sleeps.iter().collect();
        assert!(distinct.len() > 20, "sleeps should vary: {distinct:?}");
    }

    #[test]
    fn retries_busy_errors_then_succeeds() {
        let mut calls = 0;
        let out = retry(Duration::from_secs(5), "test", || {
            calls += 1;
            if calls < 4 { Err(busy_error()) } else { Ok(calls) }
        });
        assert_eq!(out.ok(), Some(4));
    }

    #[test]
    fn gives_up_with_busy_after_the_limit() {
        let out: StoreResult<()> = retry(Duration::from_millis(50), "test", || Err(busy_error()));
        match out {
            Err(StoreError::Busy { waited_ms }) => assert!(waited_ms >= 50, "{waited_ms}"),
            other => panic!("expected Busy, got {other:?}"),
        }
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut calls = 0;
        let out: StoreResult<()> = retry(Duration::from_secs(5), "test", || {
            calls += 1;
            Err(StoreError::InvalidInput("no".into()))
        });
        assert!(matches!(out, Err(StoreError::InvalidInput(_))));
        assert_eq!(calls, 1);
    }
}
