//! Waiting for the directory's lock happens on the blocking pool: a store call stuck
//! behind another handle's transaction leaves the async runtime free.

use std::time::{Duration, Instant};

use buildstate_core::{CatalogItem, ImageType};
use buildstate_store::Store;

use super::*;

/// The runner's heartbeats and timeouts share a current-thread runtime with store calls
/// (the one-shot CLI's); a write queued behind another handle must not freeze them. On
/// the runtime's own thread, this write would wait for a lock that only this thread
/// can release, until `Busy`.
#[test]
fn a_write_waiting_for_the_lock_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let holder = FileStore::open(dir.path()).expect("open");
    let writer = FileStore::open(dir.path()).expect("another handle, as another process has");
    let item = CatalogItem::ImageType(ImageType {
        name: name("base"),
        display_name: "Base".into(),
        description: String::new(),
    });
    let held = holder.inner_lock_for_tests();
    runtime().block_on(async move {
        let write = tokio::spawn(async move { writer.add_catalog_item(&item).await });
        let start = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(start.elapsed() < Duration::from_millis(400), "the timer was late: {:?}", start.elapsed());
        assert!(!write.is_finished(), "the write waits for the lock");
        drop(held);
        write.await.expect("join").expect("the write goes through once the lock is free");
    });
    let listed = runtime().block_on(holder.catalog(buildstate_core::CatalogKind::ImageType));
    assert_eq!(listed.expect("read").len(), 1);
}
