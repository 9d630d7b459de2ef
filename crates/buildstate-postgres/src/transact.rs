//! `Backend` for `PostgresStore`: each unit of work of the engine runs in one
//! transaction on a pooled connection, run again whole when it lost a conflict with a
//! concurrent transaction.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use buildstate_store::sql::SqlTx;
use buildstate_store::{Backend, Mode, StoreError, StoreResult, TxFuture, Work};

use crate::PostgresStore;
use crate::error::{is_connection_lost, is_transient};
use crate::tx::{DIALECT, PgTx};

/// How many times a unit of work runs before a conflict is reported as `Busy` (or a
/// run of broken connections as `Unavailable`). Each retry follows a transaction that
/// PostgreSQL aborted (deadlock, serialization), an insert that raced a concurrent
/// writer, or a connection lost before `COMMIT` was sent; a handful is plenty.
const MAX_ATTEMPTS: u32 = 8;
/// The first backoff; it doubles per attempt up to [`MAX_BACKOFF`], jittered so that
/// the losers of one conflict do not collide again in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// One run of a unit of work, with `state` that survives between runs (the engine's
/// `Work`, or a test's counters).
type Run<S, T> = for<'t> fn(&'t mut SqlTx<PgTx>, &'t mut S) -> TxFuture<'t, T>;

#[async_trait]
impl Backend for PostgresStore {
    fn location(&self) -> String {
        PostgresStore::location(self).to_owned()
    }

    /// A write is read committed: each statement sees the latest commits, and the build
    /// row is locked when the work first reads it (`PgTx::build`), so the rules run on
    /// what is stored. A read is one repeatable-read, read-only snapshot, as an export
    /// of several tables needs; it never blocks writers and never aborts.
    async fn transact<T: Send + 'static>(
        &self,
        mode: Mode,
        what: &'static str,
        mut work: Work<T>,
    ) -> StoreResult<T> {
        self.retrying(mode, what, &mut work, |tx, work| work(tx)).await
    }
}

impl PostgresStore {
    /// Runs `run` in a transaction of `mode`, committed if it succeeds, rolled back if it
    /// fails, and run again whole after a transient failure (see [`MAX_ATTEMPTS`]).
    async fn retrying<S: Send, T>(
        &self,
        mode: Mode,
        what: &'static str,
        state: &mut S,
        run: Run<S, T>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match self.once(mode, state, run).await {
                Ok(value) => return Ok(value),
                Err(e) if is_transient(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(what, attempt, error = %e, "postgres transaction conflicted; running it again");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) if is_connection_lost(&e) => {
                    return Err(self.unavailable(format!("lost the connection during {what}: {e}")));
                }
                Err(e) if is_transient(&e) => {
                    tracing::warn!(what, attempt, error = %e, "postgres transaction kept conflicting");
                    let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Err(StoreError::Busy { waited_ms });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// On an error the transaction is rolled back before the connection serves anyone
    /// else; a connection that cannot say it did is closed (`PgTx`'s `Drop`).
    async fn once<S: Send, T>(&self, mode: Mode, state: &mut S, run: Run<S, T>) -> StoreResult<T> {
        let mut tx = SqlTx::new(PgTx::new(self.client().await?, mode), &DIALECT, mode);
        let result = run(&mut tx, state).await;
        let ended = tx.conn().end(result.is_ok()).await;
        result.and_then(|value| ended.map(|()| value))
    }
}

/// The pause before attempt `attempt + 1`: exponential, capped, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
    // Randomly keyed per call: enough randomness for spreading retries, without a crate.
    let random = RandomState::new().hash_one(attempt);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(random % micros)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use buildstate_core::CatalogKind;
    use buildstate_store::Store;
    use buildstate_store::sql::{SqlConn, SqlValue};

    use super::*;
    use crate::testdb::TestSchema;

    /// The rows of one statement run in `tx`.
    async fn rows(tx: &mut SqlTx<PgTx>, sql: &str, params: &[SqlValue]) -> StoreResult<Vec<Vec<SqlValue>>> {
        Ok(tx.conn().read(&[(sql, params)]).await?.pop().unwrap_or_default())
    }

    async fn store(schema: &TestSchema) -> PostgresStore {
        PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect")
    }

    /// Inserts an image type, then fails with a real server error of `code` while
    /// `runs` is below `failing`; counts the runs.
    async fn insert_then_fail(
        tx: &mut SqlTx<PgTx>,
        (runs, failing, code): &(AtomicU32, u32, &str),
    ) -> StoreResult<u32> {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        rows(
            tx,
            "INSERT INTO image_types (name, display_name) VALUES ($1, $2)",
            &["base".into(), "Base".into()],
        )
        .await?;
        if run <= *failing {
            // The SQLSTATE is ours, a constant: raising it is how PostgreSQL reports it.
            let raise = format!("DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{code}'; END $$");
            rows(tx, &raise, &[]).await?;
        }
        Ok(run)
    }

    /// Ends its own session while `runs` is below `failing`; counts the runs.
    async fn lose_the_connection(
        tx: &mut SqlTx<PgTx>,
        (runs, failing): &(AtomicU32, u32),
    ) -> StoreResult<u32> {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        if run <= *failing {
            rows(tx, "SELECT pg_terminate_backend(pg_backend_pid())", &[]).await?;
        }
        Ok(run)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_runs_the_whole_unit_again_from_scratch() {
        let schema = TestSchema::new("retry");
        let store = store(&schema).await;
        for code in ["40P01", "40001"] {
            let mut args = (AtomicU32::new(0), 2, code);
            let run = store
                .retrying(Mode::Write, "test", &mut args, |tx, args| Box::pin(insert_then_fail(tx, args)))
                .await
                .unwrap_or_else(|e| panic!("{code}: the third run succeeds: {e}"));
            assert_eq!(run, 3, "{code}: two aborted runs, then one that commits");
            // The aborted runs' inserts were rolled back: one item, and no duplicate key.
            assert_eq!(store.catalog(CatalogKind::ImageType).await.expect("list").len(), 1);
            let base = buildstate_core::Name::new("base").expect("name");
            store.remove_catalog_item(CatalogKind::ImageType, &base).await.expect("clean up");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflict_that_never_ends_is_busy_and_other_errors_are_not_retried() {
        let schema = TestSchema::new("busy");
        let store = store(&schema).await;
        let mut args = (AtomicU32::new(0), u32::MAX, "40P01");
        match store.retrying(Mode::Write, "test", &mut args, |tx, a| Box::pin(insert_then_fail(tx, a))).await
        {
            Err(StoreError::Busy { .. }) => {}
            other => panic!("expected Busy, got {other:?}"),
        }
        assert_eq!(args.0.load(Ordering::SeqCst), MAX_ATTEMPTS, "bounded");

        let mut args = (AtomicU32::new(0), 1, "23514");
        match store.retrying(Mode::Write, "test", &mut args, |tx, a| Box::pin(insert_then_fail(tx, a))).await
        {
            Err(StoreError::Backend { .. }) => {}
            other => panic!("a check violation is a Backend error, got {other:?}"),
        }
        assert_eq!(args.0.load(Ordering::SeqCst), 1, "not retried");
        assert!(store.catalog(CatalogKind::ImageType).await.expect("list").is_empty(), "rolled back");
    }

    /// A server restart or an administrator ends idle pooled sessions; callers must not
    /// notice: the pool replaces a connection it knows is closed, and one found dead by
    /// the first statement is closed and the unit of work runs on another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_ended_by_the_server_are_replaced_unnoticed() {
        let schema = TestSchema::new("idle");
        let store = store(&schema).await;
        let raw = crate::testdb::raw_client(&schema).await;
        for _ in 0..5 {
            let pid: i32 = store
                .retrying(Mode::Read, "test", &mut (), |tx, ()| {
                    Box::pin(async move {
                        match rows(tx, "SELECT pg_backend_pid()", &[]).await?.first().map(Vec::as_slice) {
                            Some([SqlValue::Int(pid)]) => Ok(i32::try_from(*pid).unwrap_or_default()),
                            _ => Err(StoreError::Busy { waited_ms: 0 }),
                        }
                    })
                })
                .await
                .expect("read the backend pid");
            raw.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("end the idle session");
            assert!(store.catalog(CatalogKind::Os).await.expect("the next call works").is_empty());
        }
    }

    /// Nothing commits without `COMMIT`: a unit of work whose connection broke before
    /// it was sent runs again on another, a bounded number of times.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_lost_mid_transaction_runs_the_unit_again_then_is_unavailable() {
        let schema = TestSchema::new("lost");
        let store = store(&schema).await;
        let mut args = (AtomicU32::new(0), 1);
        let run =
            store.retrying(Mode::Read, "test", &mut args, |tx, a| Box::pin(lose_the_connection(tx, a))).await;
        assert_eq!(run.expect("the second run, on a fresh connection"), 2);

        let mut args = (AtomicU32::new(0), u32::MAX);
        match store
            .retrying(Mode::Write, "test", &mut args, |tx, a| Box::pin(lose_the_connection(tx, a)))
            .await
        {
            Err(StoreError::Unavailable { reason, location }) => {
                assert!(reason.contains("lost the connection"), "{reason}");
                assert!(!location.contains(":buildstate@"), "{location}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(args.0.load(Ordering::SeqCst), MAX_ATTEMPTS, "bounded");
        assert!(store.catalog(CatalogKind::Platform).await.expect("a fresh connection").is_empty());
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 1..40 {
            assert!(backoff(attempt) <= MAX_BACKOFF, "attempt {attempt}");
        }
        let early: Duration = (0..200).map(|_| backoff(1)).max().unwrap_or_default();
        assert!(early <= FIRST_BACKOFF * 2, "{early:?}");
        let late: Duration = (0..200).map(|_| backoff(10)).max().unwrap_or_default();
        assert!(late > FIRST_BACKOFF * 2, "later attempts may wait longer: {late:?}");
    }
}
