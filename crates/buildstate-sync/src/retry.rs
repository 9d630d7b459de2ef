//! The one retry loop every remote call goes through: exponential backoff with jitter on
//! transient failures, inside a hard time bound per operation.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How hard a sync operation tries before it gives up (and a push goes to the backlog).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// Hard bound on one operation (`push`, `pull`, `list`, one document of `status`),
    /// retries, conflict re-reads and backoff included: a transition that pushes its copy
    /// never waits longer than this for the network.
    pub op_timeout: Duration,
    /// First backoff delay; doubles per attempt up to `max_backoff`, with jitter.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How many times a push re-reads a copy that another writer changed and tries again.
    pub max_conflict_rounds: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            op_timeout: Duration::from_secs(5),
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            max_conflict_rounds: 5,
        }
    }
}

impl SyncOptions {
    /// Delay before retry number `attempt` (1 = the first retry): "equal jitter", half
    /// fixed and half random, so that writers that failed together do not retry together
    /// but none retries immediately.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.first_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_backoff);
        let half = cap / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Why a bounded call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A failure retrying cannot fix, or one the caller handles (not found, precondition).
    Permanent(object_store::Error),
    /// Transient failures until the bound ran out.
    GaveUp { attempts: u32, last: String },
}

/// Runs `op` until it succeeds, fails permanently, or `deadline` passes. Each attempt is
/// itself cut off at the deadline, so a hung connection cannot outlive the bound.
pub(crate) async fn bounded<T, F, Fut>(
    options: &SyncOptions,
    deadline: Instant,
    mut op: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = match tokio::time::timeout_at(deadline, op()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if is_transient(&e) => e.to_string(),
            Ok(Err(e)) => return Err(Failure::Permanent(e)),
            Err(_elapsed) => "timed out".to_owned(),
        };
        let wake = Instant::now() + options.backoff(attempts);
        if wake >= deadline {
            return Err(Failure::GaveUp { attempts, last });
        }
        tracing::debug!(attempts, error = %last, "sync: transient failure, retrying");
        tokio::time::sleep_until(wake).await;
    }
}

/// Connection refused or reset, timeouts, 5xx and 429 are worth retrying; everything
/// object_store names (not found, precondition, permission, …) and other 4xx are not.
pub(crate) fn is_transient(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::Generic { .. } => generic_is_transient(e),
        _ => false,
    }
}

fn generic_is_transient(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        #[cfg(feature = "cloud")]
        if let Some(http) = err.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            return matches!(http.kind(), K::Connect | K::Request | K::Timeout | K::Interrupted);
        }
        if let Some(status) = status_in(&err.to_string()) {
            return status >= 500 || status == 429;
        }
        cause = err.source();
    }
    false
}

/// object_store keeps its HTTP status errors private; their message reads
/// "… status code: 503 Service Unavailable …". Pinned by a test below so that a change of
/// wording shows up as a failing test, not as 5xx no longer being retried.
fn status_in(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let o = SyncOptions::default();
        for attempt in 1..40 {
            let cap = (o.first_backoff * 2u32.pow((attempt - 1).min(16))).min(o.max_backoff);
            let d = o.backoff(attempt);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?} outside {:?}..={cap:?}", cap / 2);
        }
        let draws: std::collections::BTreeSet<_> = (0..20).map(|_| o.backoff(5)).collect();
        assert!(draws.len() > 1, "backoff must be jittered");
    }

    #[test]
    fn status_codes_are_read_from_object_store_messages() {
        let msg = "Error performing PUT http://127.0.0.1:1/b/k in 2ms - Server returned non-2xx status code: \
                   503 Service Unavailable: slow down";
        assert_eq!(status_in(msg), Some(503));
        assert_eq!(status_in("Server returned non-2xx status code: 400 Bad Request: "), Some(400));
        assert_eq!(status_in("connection refused"), None);
    }

    #[test]
    fn named_errors_are_not_retried() {
        let e = object_store::Error::NotFound { path: "p".into(), source: "gone".into() };
        assert!(!is_transient(&e));
        let e = object_store::Error::Generic { store: "S3", source: "status code: 502 Bad Gateway".into() };
        assert!(is_transient(&e));
        let e = object_store::Error::Generic { store: "S3", source: "status code: 403 Forbidden".into() };
        assert!(!is_transient(&e));
    }
}
