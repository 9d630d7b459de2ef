//! `SyncedStore` is a `Store`: the whole conformance suite, run on a SQLite store whose
//! every change is copied to a directory target. Each `open` is another machine: its
//! own store handle and its own syncer state.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use buildstate_sqlite::SqliteStore;
use buildstate_store::Store;
use buildstate_store::conformance::Harness;
use buildstate_sync::{SyncTarget, SyncedStore, Syncer};
use tempfile::TempDir;

struct SyncedHarness {
    dir: TempDir,
    opened: AtomicU32,
}

impl SyncedHarness {
    fn db(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }
}

#[async_trait]
impl Harness for SyncedHarness {
    async fn open(&self) -> Arc<dyn Store> {
        let inner = SqliteStore::open(self.db()).expect("open the SQLite store");
        let url = format!("file://{}", self.dir.path().join("copies").display());
        let target = SyncTarget::parse(&url).expect("a directory target");
        let n = self.opened.fetch_add(1, Ordering::SeqCst);
        let syncer = Syncer::new(target, self.dir.path().join(format!("state-{n}"))).expect("a syncer");
        Arc::new(SyncedStore::new(Arc::new(inner), Arc::new(syncer)))
    }
}

fn harness() -> SyncedHarness {
    SyncedHarness { dir: tempfile::tempdir().expect("temp dir"), opened: AtomicU32::new(0) }
}

buildstate_store::conformance_tests!(harness());
