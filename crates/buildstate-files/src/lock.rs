//! The store's lock: `DIR/.lock`, exclusive for writers, shared for readers.
//!
//! Every write is a read-modify-write of several files (a build document, the index, the
//! catalog), so writers must exclude each other for the whole transaction, across
//! processes: that is the advisory lock on `DIR/.lock` (`flock` on Unix). Readers take
//! it shared, so that a read that spans files (a listing, a build and its lease) sees
//! one committed state. Advisory locks do not work across NFS; the crate docs say so.
//!
//! `flock` locks belong to an open file description, so two handles opened separately
//! (in one process or two) exclude each other, but clones of one handle share the
//! description and would not: those are serialized by the handle's mutex first.

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use buildstate_store::{Mode, StoreError, StoreResult};

use crate::error::io;

/// How long a caller waits for another process's lock before `StoreError::Busy`; the
/// same patience as the SQLite backend's.
pub(crate) const BUSY_LIMIT: Duration = Duration::from_secs(60);

/// Shortest and longest pause between two attempts at a contended lock.
const FIRST_PAUSE: Duration = Duration::from_micros(200);
const LONGEST_PAUSE: Duration = Duration::from_millis(8);

#[derive(Debug)]
pub(crate) struct DirLock {
    path: PathBuf,
    file: Mutex<File>,
    limit: Duration,
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    file: MutexGuard<'a, File>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too, but the handle lives on. An unlock
        // that fails leaves nothing to do: the lock goes with the process at the latest.
        if let Err(e) = self.file.unlock() {
            tracing::warn!(error = %e, "could not unlock the file store");
        }
    }
}

impl DirLock {
    /// Opens (creating it if missing) the lock file.
    pub(crate) fn open(path: &Path, limit: Duration) -> StoreResult<DirLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io("open the lock file", path, e))?;
        Ok(DirLock { path: path.to_owned(), file: Mutex::new(file), limit })
    }

    /// Waits for the lock — shared for [`Mode::Read`], exclusive for [`Mode::Write`] —
    /// retrying with jittered, growing pauses, for up to the handle's limit. Polling rather than a blocking `lock()` so that a stuck holder
    /// (a stopped process) becomes `Busy` after a bound instead of hanging every caller.
    pub(crate) fn acquire(&self, mode: Mode) -> StoreResult<Held<'_>> {
        // The mutex guards no in-memory state (every transaction re-reads the files),
        // so a panic of an earlier holder leaves nothing inconsistent behind.
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let start = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            let attempt = match mode {
                Mode::Read => file.try_lock_shared(),
                Mode::Write => file.try_lock(),
            };
            match attempt {
                Ok(()) => return Ok(Held { file }),
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= self.limit {
                        return Err(StoreError::Busy {
                            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                        });
                    }
                    std::thread::sleep(jitter(pause));
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(TryLockError::Error(e)) => return Err(io("lock the file store", &self.path, e)),
            }
        }
    }

    /// The lock if nobody else holds it right now; `None` otherwise.
    pub(crate) fn try_exclusive(&self) -> StoreResult<Option<Held<'_>>> {
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        match file.try_lock() {
            Ok(()) => Ok(Some(Held { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(io("lock the file store", &self.path, e)),
        }
    }
}

/// Between half and all of `pause`, so that waiters that collided once do not collide
/// again in lock step.
fn jitter(pause: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let nanos = u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX).max(2);
    Duration::from_nanos(nanos / 2 + random % (nanos / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_waits_then_is_busy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".lock");
        let first = DirLock::open(&path, BUSY_LIMIT).expect("open");
        let second = DirLock::open(&path, Duration::from_millis(50)).expect("open");
        let held = first.acquire(Mode::Write).expect("lock");
        assert!(matches!(second.acquire(Mode::Read), Err(StoreError::Busy { .. })));
        assert!(second.try_exclusive().expect("try").is_none());
        drop(held);
        let shared = second.acquire(Mode::Read).expect("free again");
        let also = first.acquire(Mode::Read).expect("readers share");
        drop((shared, also));
    }

    #[test]
    fn jitter_stays_within_the_pause() {
        for _ in 0..100 {
            let j = jitter(LONGEST_PAUSE);
            assert!(j >= LONGEST_PAUSE / 2 && j <= LONGEST_PAUSE, "{j:?}");
        }
    }
}
