//! `Backend` for `PostgresStore`: each unit of work of the engine runs in one
//! transaction on a pooled connection, run again whole when it lost a conflict with a
//! concurrent transaction.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use buildstate_store::{Backend, Mode, StoreError, StoreResult, Work};
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::IsolationLevel;

use crate::PostgresStore;
use crate::error::{PgContext, StaleConnection, is_connection_lost, is_transient};
use crate::tx::PgTx;

/// How many times a unit of work runs before a conflict is reported as `Busy` (or a
/// run of dead pooled connections as `Unavailable`). Each retry follows a transaction
/// that PostgreSQL aborted (deadlock, serialization), an insert that raced a concurrent
/// writer, or a pooled connection found dead at `BEGIN`; a handful is plenty.
const MAX_ATTEMPTS: u32 = 8;
/// The first backoff; it doubles per attempt up to [`MAX_BACKOFF`], jittered so that
/// the losers of one conflict do not collide again in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// One run of a unit of work on transaction `tx`, with `state` that survives between
/// runs (the engine's `Work`, or a test's counters).
type Run<S, T> = for<'t> fn(&'t Transaction<'_>, Mode, &'t mut S) -> TxFuture<'t, T>;
type TxFuture<'t, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 't>>;

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
        self.retrying(mode, what, &mut work, |tx, mode, work| {
            Box::pin(async move { work(&mut PgTx::new(tx, mode)).await })
        })
        .await
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

    async fn once<S: Send, T>(&self, mode: Mode, state: &mut S, run: Run<S, T>) -> StoreResult<T> {
        let mut client = self.client().await?;
        let result = match begin(&mut client, mode).await {
            // On an error the transaction is dropped, which rolls it back before the
            // connection serves anyone else.
            Ok(tx) => match run(&tx, mode, state).await {
                Ok(value) => tx.commit().await.ctx("commit a transaction").map(|()| value),
                Err(e) => Err(e),
            },
            // Dead in the pool before anything was sent on it: run again on another.
            Err(e) if is_connection_lost(&e) => {
                Err(StoreError::backend("begin a transaction", StaleConnection(e.to_string())))
            }
            Err(e) => Err(e),
        };
        if matches!(&result, Err(e) if is_connection_lost(e)) {
            // The pool checks only that a connection is open, and a connection whose
            // session just ended may not know yet: never hand this one out again.
            drop(Object::take(client));
        }
        result
    }
}

async fn begin(client: &mut Object, mode: Mode) -> StoreResult<Transaction<'_>> {
    match mode {
        Mode::Write => client.transaction().await,
        Mode::Read => {
            client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
        }
    }
    .ctx("begin a transaction")
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

    use super::*;
    use crate::rows;
    use crate::testdb::TestSchema;

    async fn store(schema: &TestSchema) -> PostgresStore {
        PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect")
    }

    /// Inserts an image type, then fails with a real server error of `code` while
    /// `runs` is below `failing`; counts the runs.
    async fn insert_then_fail(
        tx: &Transaction<'_>,
        (runs, failing, code): &(AtomicU32, u32, &str),
    ) -> StoreResult<u32> {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        rows::execute(
            tx,
            "INSERT INTO image_types (name, display_name) VALUES ($1, $2)",
            &[&"base", &"Base"],
            "insert",
        )
        .await?;
        if run <= *failing {
            // The SQLSTATE is ours, a constant: raising it is how PostgreSQL reports it.
            let raise = format!("DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{code}'; END $$");
            tx.batch_execute(&raise).await.ctx("raise")?;
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
                .retrying(Mode::Write, "test", &mut args, |tx, _, args| Box::pin(insert_then_fail(tx, args)))
                .await
                .unwrap_or_else(|e| panic!("{code}: the third run succeeds: {e}"));
            assert_eq!(run, 3, "{code}: two aborted runs, then one that commits");
            // The aborted runs' inserts were rolled back: one item, and no duplicate key.
            assert_eq!(store.catalog(CatalogKind::ImageType).await.expect("list").len(), 1);
            store
                .remove_catalog_item(
                    CatalogKind::ImageType,
                    &buildstate_core::Name::new("base").expect("name"),
                )
                .await
                .expect("clean up");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflict_that_never_ends_is_busy_and_other_errors_are_not_retried() {
        let schema = TestSchema::new("busy");
        let store = store(&schema).await;
        let mut args = (AtomicU32::new(0), u32::MAX, "40P01");
        match store
            .retrying(Mode::Write, "test", &mut args, |tx, _, a| Box::pin(insert_then_fail(tx, a)))
            .await
        {
            Err(StoreError::Busy { .. }) => {}
            other => panic!("expected Busy, got {other:?}"),
        }
        assert_eq!(args.0.load(Ordering::SeqCst), MAX_ATTEMPTS, "bounded");

        let mut args = (AtomicU32::new(0), 1, "23514");
        match store
            .retrying(Mode::Write, "test", &mut args, |tx, _, a| Box::pin(insert_then_fail(tx, a)))
            .await
        {
            Err(StoreError::Backend { .. }) => {}
            other => panic!("a check violation is a Backend error, got {other:?}"),
        }
        assert_eq!(args.0.load(Ordering::SeqCst), 1, "not retried");
        assert!(store.catalog(CatalogKind::ImageType).await.expect("list").is_empty(), "rolled back");
    }

    /// A server restart or an administrator ends idle pooled sessions; callers must not
    /// notice: the pool replaces a connection it knows is closed, and one found dead at
    /// `BEGIN` is discarded and the unit of work runs on another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_ended_by_the_server_are_replaced_unnoticed() {
        let schema = TestSchema::new("idle");
        let store = store(&schema).await;
        let raw = crate::testdb::raw_client(&schema).await;
        for _ in 0..5 {
            let pid: i32 = store
                .retrying(Mode::Read, "test", &mut (), |tx, _, ()| {
                    Box::pin(async move {
                        let row = tx.query_one("SELECT pg_backend_pid()", &[]).await.ctx("pid")?;
                        row.try_get(0).ctx("pid")
                    })
                })
                .await
                .expect("read the backend pid");
            raw.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("end the idle session");
            assert!(store.catalog(CatalogKind::Os).await.expect("the next call works").is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_connection_is_unavailable_and_the_pool_recovers() {
        let schema = TestSchema::new("lost");
        let store = store(&schema).await;
        let r = store
            .retrying(Mode::Read, "test", &mut (), |tx, _, ()| {
                Box::pin(async move {
                    tx.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())").await.ctx("terminate")
                })
            })
            .await;
        match r {
            Err(StoreError::Unavailable { reason, location }) => {
                assert!(reason.contains("lost the connection"), "{reason}");
                assert!(!location.contains(":buildstate@"), "{location}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
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
