//! The store handle: one connection behind a mutex, and how units of work run on it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use buildstate_store::{Backend, Mode, StoreError, StoreResult, Work};
use rusqlite::Connection;

use crate::busy;
use crate::error::SqlContext;
use buildstate_store::sql::SqlTx;

use crate::conn::{DIALECT, SqliteConn};

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
    /// one: it is only ever held on a blocking thread, never across an `.await`.
    conn: Mutex<Connection>,
    schema_version: u32,
    busy_limit: Duration,
    read_only: bool,
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

    /// Opens an existing, up-to-date database for reading only — a store shipped
    /// read-only (file mode 0444, a read-only directory or mount). Never creates or
    /// migrates anything; every write is `Unavailable`.
    pub fn open_read_only(path: impl AsRef<Path>) -> StoreResult<SqliteStore> {
        crate::open::open_read_only(path.as_ref(), busy::BUSY_LIMIT)
    }

    pub(crate) fn from_parts(
        location: String,
        conn: Connection,
        schema_version: u32,
        busy_limit: Duration,
        read_only: bool,
    ) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                location,
                conn: Mutex::new(conn),
                schema_version,
                busy_limit,
                read_only,
            }),
        }
    }

    /// Whether it was opened with [`SqliteStore::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The schema version of the database, after migration: [`crate::SCHEMA_VERSION`].
    pub fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    /// Runs `f` on the connection outside any transaction of the engine's (tests that
    /// look at pragmas or hold a lock).
    #[cfg(test)]
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.inner.conn.lock().map_err(|_| poisoned())?;
        f(&conn)
    }
}

fn poisoned() -> StoreError {
    // A panic while the lock was held left no transaction open (it was rolled back
    // below or by SQLite when the statement failed), but a poisoned handle is a bug
    // worth surfacing.
    StoreError::Backend {
        context: "sqlite connection",
        source: "an earlier call panicked while using this connection; open the store again".into(),
    }
}

#[async_trait]
impl Backend for SqliteStore {
    fn location(&self) -> String {
        self.inner.location.clone()
    }

    /// One unit of work off the async threads (`run_blocking`): a transaction around `work`, committed
    /// if it succeeds, rolled back if it fails, and retried whole on lock contention.
    /// A write begins `IMMEDIATE`, holding the write lock from its first statement: a
    /// deferred transaction would take a read lock and upgrade it at its first write,
    /// and two such writers deadlock (SQLite breaks the tie by failing one at once).
    async fn transact<T: Send + 'static>(
        &self,
        mode: Mode,
        what: &'static str,
        work: Work<T>,
    ) -> StoreResult<T> {
        if self.inner.read_only && mode == Mode::Write {
            return Err(StoreError::Unavailable {
                location: self.inner.location.clone(),
                reason:
                    "it was opened read-only (the file or its directory is not writable); nothing was changed"
                        .into(),
            });
        }
        let inner = Arc::clone(&self.inner);
        buildstate_store::run_blocking("sqlite worker thread", move |runtime| {
            // Owned by this thread and called once per attempt.
            let mut work = work;
            let mut conn = inner.conn.lock().map_err(|_| poisoned())?;
            busy::retry(inner.busy_limit, what, || {
                let begin = match mode {
                    Mode::Read => "BEGIN DEFERRED",
                    Mode::Write => "BEGIN IMMEDIATE",
                };
                conn.execute_batch(begin).ctx("begin transaction")?;
                // The primitives never wait on anything async; the runtime handle is
                // there in case a future ever does.
                let result = buildstate_store::finish_on_this_thread(
                    runtime,
                    work(&mut SqlTx::new(SqliteConn(&mut conn), &DIALECT, mode)),
                );
                let result =
                    result.and_then(|v| conn.execute_batch("COMMIT").ctx("commit transaction").map(|()| v));
                if result.is_err() && !conn.is_autocommit() {
                    // Best effort: a failed rollback leaves nothing that the next BEGIN
                    // would not report.
                    let _ = conn.execute_batch("ROLLBACK");
                }
                result
            })
        })
        .await
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
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
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

    /// The runner's heartbeats, output pumps and timeouts share the runtime with store
    /// calls: a call waiting out another process's lock must not freeze them, even on a
    /// current-thread runtime (the one-shot CLI's).
    #[test]
    fn a_write_waiting_for_a_lock_stalls_no_other_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        let store = SqliteStore::open(&path).expect("open");
        let holder = hold_write_lock(&path, Duration::from_millis(600));
        let ticks = current_thread().block_on(async {
            let ticker = tokio::spawn(async {
                let mut ticks = 0u32;
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(500) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks += 1;
                }
                ticks
            });
            store.add_catalog_item(&image_type("base")).await.expect("waits, then writes");
            ticker.await.expect("ticker")
        });
        holder.join().expect("holder");
        assert!(ticks >= 20, "the timer kept ticking while the write waited: {ticks} ticks in 500 ms");
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
