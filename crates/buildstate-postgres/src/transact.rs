//! Units of work: one transaction on a pooled connection, retried whole when it lost a
//! conflict with a concurrent transaction.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::time::{Duration, Instant};

use buildstate_store::{StoreError, StoreResult};
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::IsolationLevel;

use crate::PostgresStore;
use crate::error::{PgContext, StaleConnection, is_connection_lost, is_transient};

/// How many times a unit of work runs before a conflict is reported as `Busy` (or a
/// run of dead pooled connections as `Unavailable`). Each retry follows a transaction
/// that PostgreSQL aborted (deadlock, serialization), a build number taken under our
/// feet, or a pooled connection found dead at `BEGIN`; a handful is plenty.
const MAX_ATTEMPTS: u32 = 8;
/// The first backoff; it doubles per attempt up to [`MAX_BACKOFF`], jittered so that
/// the losers of one conflict do not collide again in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// The future of one unit of work on transaction `tx`, borrowing `tx` and the work's
/// inputs for `'t`. Boxed with `Send` spelled out: a generic async closure here would
/// make the compiler prove `Send` for a future type under a higher-ranked lifetime,
/// which it cannot.
pub(crate) type TxFuture<'t, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 't>>;

/// A unit of work: given the transaction and its inputs (`args`, borrowed for as long
/// as the transaction), the future that does the work.
pub(crate) trait Work<A: ?Sized, T>:
    for<'t> Fn(&'t Transaction<'_>, &'t A) -> TxFuture<'t, T> + Sync
{
}
impl<A: ?Sized, T, F> Work<A, T> for F where
    F: for<'t> Fn(&'t Transaction<'_>, &'t A) -> TxFuture<'t, T> + Sync
{
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Read committed: each statement sees the latest commits, and rows that will be
    /// written are locked first (`sql.rs`), so the rules run on what is stored.
    Write,
    /// Repeatable read, read only: one snapshot for every statement, as an export
    /// of several tables needs; never blocks writers and never aborts.
    Read,
}

impl PostgresStore {
    /// Runs `work` on `args` in a write transaction, committed if it succeeds, rolled
    /// back if it fails, and run again whole after a transient failure (see
    /// [`MAX_ATTEMPTS`]).
    pub(crate) async fn write<A: Sync + ?Sized, T>(
        &self,
        what: &'static str,
        args: &A,
        work: impl Work<A, T>,
    ) -> StoreResult<T> {
        self.transact(Mode::Write, what, args, work).await
    }

    /// Runs `work` on `args` in a read-only snapshot.
    pub(crate) async fn read<A: Sync + ?Sized, T>(
        &self,
        what: &'static str,
        args: &A,
        work: impl Work<A, T>,
    ) -> StoreResult<T> {
        self.transact(Mode::Read, what, args, work).await
    }

    async fn transact<A: Sync + ?Sized, T>(
        &self,
        mode: Mode,
        what: &'static str,
        args: &A,
        work: impl Work<A, T>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match self.once(mode, args, &work).await {
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

    async fn once<A: Sync + ?Sized, T>(
        &self,
        mode: Mode,
        args: &A,
        work: &impl Work<A, T>,
    ) -> StoreResult<T> {
        let mut client = self.client().await?;
        let result = match begin(&mut client, mode).await {
            Ok(tx) => run(tx, args, work).await,
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

/// Runs `work` and commits. On an error the transaction is dropped, which rolls it back
/// before the connection serves anyone else.
async fn run<A: Sync + ?Sized, T>(tx: Transaction<'_>, args: &A, work: &impl Work<A, T>) -> StoreResult<T> {
    let value = work(&tx, args).await?;
    tx.commit().await.ctx("commit a transaction")?;
    Ok(value)
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
            let args = (AtomicU32::new(0), 2, code);
            let run = store
                .write("test", &args, |tx, args| Box::pin(insert_then_fail(tx, args)))
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
        let args = (AtomicU32::new(0), u32::MAX, "40P01");
        match store.write("test", &args, |tx, args| Box::pin(insert_then_fail(tx, args))).await {
            Err(StoreError::Busy { .. }) => {}
            other => panic!("expected Busy, got {other:?}"),
        }
        assert_eq!(args.0.load(Ordering::SeqCst), MAX_ATTEMPTS, "bounded");

        let args = (AtomicU32::new(0), 1, "23514");
        match store.write("test", &args, |tx, args| Box::pin(insert_then_fail(tx, args))).await {
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
                .read("test", &(), |tx, ()| {
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
            .read("test", &(), |tx, ()| {
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
