//! The store handle: one connection behind a mutex, and how units of work run on it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use buildstate_store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::busy;
use crate::error::SqlContext;

/// The embedded SQLite store. Cheap to clone: clones share one connection.
///
/// Open one handle per process (or per independent worker); concurrent handles on the
/// same file — in this process or others — are safe: SQLite's file locks serialise
/// their writes.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    location: String,
    /// One connection, used by one unit of work at a time. A `std` mutex, not an async
    /// one: it is only ever held by blocking code, never across an `.await`.
    conn: Mutex<Connection>,
    schema_version: u32,
    busy_limit: Duration,
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if missing) and migrates the
    /// database at `path`.
    ///
    /// Opening an up-to-date database costs a connection, a few pragmas and one read of
    /// `PRAGMA user_version`: it is on the path of every one-shot CLI command.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        crate::open::open(path.as_ref(), busy::BUSY_LIMIT)
    }

    pub(crate) fn from_parts(
        location: String,
        conn: Connection,
        schema_version: u32,
        busy_limit: Duration,
    ) -> Self {
        SqliteStore {
            inner: Arc::new(Inner { location, conn: Mutex::new(conn), schema_version, busy_limit }),
        }
    }

    /// The schema version of the database, after migration: [`crate::SCHEMA_VERSION`].
    pub fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    pub(crate) fn location(&self) -> &str {
        &self.inner.location
    }

    /// Runs `f` in a read transaction: a consistent snapshot, no write lock.
    pub(crate) fn read<T>(&self, f: impl FnMut(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.transact(TransactionBehavior::Deferred, "read", f)
    }

    /// Runs `f` in a write transaction that holds the write lock from its first
    /// statement (`BEGIN IMMEDIATE`). A deferred transaction would take a read lock and
    /// try to upgrade it at its first write; two such writers deadlock, and SQLite
    /// breaks the tie by failing one with "database is locked" without waiting.
    pub(crate) fn write<T>(&self, f: impl FnMut(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.transact(TransactionBehavior::Immediate, "write", f)
    }

    /// One unit of work: a transaction around `f`, committed if `f` succeeds, rolled back
    /// (on drop) if it fails, and retried whole on lock contention.
    fn transact<T>(
        &self,
        behavior: TransactionBehavior,
        what: &'static str,
        mut f: impl FnMut(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        on_blocking_thread(|| {
            // A panic while the lock was held left no transaction open (the transaction
            // rolls back as it unwinds), but a poisoned handle is a bug worth surfacing.
            let mut conn = self.inner.conn.lock().map_err(|_| StoreError::Backend {
                context: "sqlite connection",
                source: "an earlier call panicked while using this connection; open the store again".into(),
            })?;
            busy::retry(self.inner.busy_limit, what, || {
                let tx = conn.transaction_with_behavior(behavior).ctx("begin transaction")?;
                let value = f(&tx)?;
                tx.commit().ctx("commit transaction")?;
                Ok(value)
            })
        })
    }
}

/// Runs blocking work without starving the async runtime.
///
/// On a current-thread runtime (the CLI) there is nothing else to run, so the work runs
/// inline. On a multi-thread runtime `block_in_place` hands this worker's other tasks to
/// another thread first. Outside any runtime it simply runs.
fn on_blocking_thread<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use buildstate_core::{CatalogItem, ImageType, Name};
    use buildstate_store::Store;

    use super::*;

    fn image_type(n: &str) -> CatalogItem {
        CatalogItem::ImageType(ImageType {
            name: Name::new(n).expect("valid name"),
            display_name: n.into(),
            description: String::new(),
        })
    }

    /// Holds the write lock of `path` from another connection for `hold`.
    fn hold_write_lock(path: &Path, hold: Duration) -> std::thread::JoinHandle<()> {
        let path = path.to_owned();
        let (locked, wait) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let conn = Connection::open(&path).expect("raw connection");
            conn.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
            locked.send(()).expect("signal");
            std::thread::sleep(hold);
            conn.execute_batch("COMMIT").expect("release");
        });
        wait.recv().expect("lock taken");
        holder
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime")
    }

    #[test]
    fn a_writer_waits_for_another_process_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let store = SqliteStore::open(&path).expect("open");
        let holder = hold_write_lock(&path, Duration::from_millis(300));
        let start = Instant::now();
        current_thread().block_on(store.add_catalog_item(&image_type("base"))).expect("waits, then writes");
        assert!(start.elapsed() >= Duration::from_millis(250), "it did wait: {:?}", start.elapsed());
        holder.join().expect("holder");
    }

    #[test]
    fn a_lock_held_past_the_limit_is_busy_not_locked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let store = crate::open::open(&path, Duration::from_millis(100)).expect("open");
        let holder = hold_write_lock(&path, Duration::from_millis(600));
        match current_thread().block_on(store.add_catalog_item(&image_type("base"))) {
            Err(StoreError::Busy { waited_ms }) => assert!(waited_ms >= 100, "{waited_ms}"),
            other => panic!("expected Busy, got {other:?}"),
        }
        holder.join().expect("holder");
        // Nothing was half-written, and the handle is usable once the lock is free.
        current_thread().block_on(store.add_catalog_item(&image_type("base"))).expect("write after release");
    }

    #[test]
    fn readers_do_not_wait_for_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let store = crate::open::open(&path, Duration::from_millis(50)).expect("open");
        let holder = hold_write_lock(&path, Duration::from_millis(400));
        // WAL: a read sees the last commit while another connection writes.
        let listed = current_thread().block_on(store.catalog(buildstate_core::CatalogKind::ImageType));
        assert_eq!(listed.expect("read during a write").len(), 0);
        holder.join().expect("holder");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_on_a_multi_thread_runtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("mt.db")).expect("open");
        store.add_catalog_item(&image_type("base")).await.expect("write");
        assert_eq!(store.catalog(buildstate_core::CatalogKind::ImageType).await.expect("read").len(), 1);
    }

    #[test]
    fn a_poisoned_connection_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("p.db")).expect("open");
        let clone = store.clone();
        let _ = std::thread::spawn(move || {
            let _guard = clone.inner.conn.lock();
            panic!("poison the connection on purpose");
        })
        .join();
        match current_thread().block_on(store.catalog(buildstate_core::CatalogKind::ImageType)) {
            Err(StoreError::Backend { context, .. }) => assert_eq!(context, "sqlite connection"),
            other => panic!("expected a Backend error, got {other:?}"),
        }
    }
}
