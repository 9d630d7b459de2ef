//! The store contract, run against the SQLite backend.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use buildstate_sqlite::SqliteStore;
use buildstate_store::Store;
use buildstate_store::conformance::Harness;

/// One fresh database file per case; every `open` is a new connection to it, as a
/// separate process would have.
struct SqliteHarness {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path).expect("open the sqlite store"))
    }
}

fn harness() -> SqliteHarness {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("buildstate.db");
    SqliteHarness { _dir: dir, path }
}

buildstate_store::conformance_tests!(harness());
