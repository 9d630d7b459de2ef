//! The store contract, run against the JSON-file backend.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use buildstate_files::FileStore;
use buildstate_store::Store;
use buildstate_store::conformance::Harness;

/// One fresh directory per case; every `open` is a new `FileStore` on it, with its own
/// lock handle, as a separate process would have.
struct FilesHarness {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

#[async_trait]
impl Harness for FilesHarness {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(FileStore::open(&self.path).expect("open the file store"))
    }

    fn webhooks(&self) -> buildstate_store::conformance::Webhooks {
        buildstate_store::conformance::Webhooks::Refused
    }
}

fn harness() -> FilesHarness {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("store");
    FilesHarness { _dir: dir, path }
}

buildstate_store::conformance_tests!(harness());
