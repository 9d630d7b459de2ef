//! What stops a run, a worker or `exec` as a whole, and the lease time to live every
//! runner is given. A build that fails is not an error: it is an outcome, reported in
//! the summary; these are the reasons there is no summary to report.

use std::fmt;
use std::time::Duration;

use buildstate_core::{Name, TextError};
use buildstate_store::StoreError;

/// Why the runner could not do what it was asked. Callers branch on the variant (the
/// CLI maps each to an exit code, in one place, pinned by a test over every variant).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store refused or failed: the build or a catalog item does not exist, the
    /// rules refused a transition, another runner holds the lease, the store is busy, …
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--only` selects no cell of the pipeline's matrix: there is nothing to run.
    #[error(
        "{filter} selects none of the {} builds of pipeline {pipeline} ({}); filter on the platform, os and image of one of them",
        .matrix.len(),
        .matrix.join(", ")
    )]
    NothingSelected { pipeline: Name, filter: String, matrix: Vec<String> },
    /// A lease time to live outside [`LeaseTtl::MIN`] … [`LeaseTtl::MAX`].
    #[error(
        "a lease time to live of {} is outside {} … {}: shorter leases are lost to one slow heartbeat, longer ones keep a crashed runner's builds locked for more than a day",
        show(*.given),
        show(LeaseTtl::MIN.get()),
        show(LeaseTtl::MAX.get())
    )]
    LeaseTtl { given: Duration },
    /// The pipeline's name cannot be recorded as its builds' `pipeline` metadata.
    #[error("the pipeline's name cannot be recorded on its builds: {0}")]
    Metadata(#[from] TextError),
    /// The task driving one build ended without an outcome (it panicked): a bug.
    #[error("the task running a build ended without an outcome: {0}")]
    TaskFailed(String),
}

/// How long a runner's lease on a build lives without a heartbeat: at least
/// [`LeaseTtl::MIN`], at most [`LeaseTtl::MAX`], so that a dispatcher is never handed a
/// lease that one delayed heartbeat loses, nor one that outlives its runner for days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaseTtl(Duration);

impl LeaseTtl {
    /// Heartbeats come every third of the ttl (at most every 2 s): at 3 s a renewal may
    /// be a second late — a busy store, a loaded machine — without losing the lease.
    pub const MIN: LeaseTtl = LeaseTtl(Duration::from_secs(3));
    /// A runner that dies holding a lease on another machine blocks its builds this long.
    pub const MAX: LeaseTtl = LeaseTtl(Duration::from_secs(24 * 3600));
    /// What `run`, `exec` and `worker` take when not told otherwise.
    pub const DEFAULT: LeaseTtl = LeaseTtl(Duration::from_secs(60));

    pub fn new(ttl: Duration) -> Result<LeaseTtl, RunError> {
        if (LeaseTtl::MIN.0..=LeaseTtl::MAX.0).contains(&ttl) {
            Ok(LeaseTtl(ttl))
        } else {
            Err(RunError::LeaseTtl { given: ttl })
        }
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl Default for LeaseTtl {
    fn default() -> Self {
        LeaseTtl::DEFAULT
    }
}

impl fmt::Display for LeaseTtl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&show(self.0))
    }
}

/// `500ms`, `3s`, `90s`, `24h`: how durations are written on the command line.
fn show(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_ttl_range_is_3s_to_24h_inclusive() {
        let ms = Duration::from_millis;
        for ok in [ms(3000), ms(60_000), ms(86_400_000)] {
            assert_eq!(LeaseTtl::new(ok).map(LeaseTtl::get).ok(), Some(ok), "{ok:?}");
        }
        for bad in [ms(0), ms(1000), ms(2999), ms(86_400_001), Duration::from_secs(u64::MAX)] {
            assert!(
                matches!(LeaseTtl::new(bad), Err(RunError::LeaseTtl { given }) if given == bad),
                "{bad:?}"
            );
        }
        let e = LeaseTtl::new(ms(1500)).expect_err("too short");
        assert!(e.to_string().starts_with("a lease time to live of 1500ms is outside 3s … 24h"), "{e}");
    }
}
