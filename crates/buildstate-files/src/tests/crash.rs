//! What a writer killed mid-transaction leaves behind, made by hand at each cut point.

use buildstate_core::BuildNumber;
use buildstate_store::{BuildFilter, Store, StoreError};

use super::*;
use crate::atomic::{TEMP_PREFIX, TEMP_SUFFIX};

/// Killed between writing the temporary file and renaming it: the old document stays,
/// the half-written temporary file is ignored, and the next uncontended open removes it.
#[test]
fn a_stray_temporary_file_is_ignored_then_swept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    let before = rt.block_on(store.export_build(b.id)).expect("export");
    let stray = dir.path().join("builds").join(format!("{TEMP_PREFIX}a1b2c3{TEMP_SUFFIX}"));
    let text = std::fs::read_to_string(dir.path().join("builds").join(format!("{}.json", b.number)))
        .expect("read the document");
    std::fs::write(&stray, &text[..text.len() / 3]).expect("leave half a document");

    // While another handle holds the lock, an open does not sweep, and nobody trips.
    let held = store.inner_lock_for_tests();
    let other = FileStore::open_with_patience(dir.path(), std::time::Duration::from_secs(5)).expect("open");
    assert!(stray.exists(), "no sweep while somebody may be writing");
    drop(held);
    let listed = rt.block_on(other.list_builds(&BuildFilter::default())).expect("list");
    assert_eq!(listed.len(), 1, "the temporary file is not a build");
    assert_eq!(rt.block_on(other.export_build(b.id)).expect("export"), before, "the old document stands");

    FileStore::open(dir.path()).expect("an uncontended open");
    assert!(!stray.exists(), "the dead writer's temporary file is removed");
}

/// Killed between a new build's document and the index: the next reader indexes it.
#[test]
fn a_document_the_index_does_not_cover_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    std::fs::write(dir.path().join("index.json"), "{}").expect("an index from before the create");
    assert_eq!(rt.block_on(store.build(b.id)).expect("found by id").number, b.number);
    std::fs::write(dir.path().join("index.json"), "{\"trunc").expect("a damaged index");
    assert_eq!(rt.block_on(store.find_build(&b.id.to_string()[..20])).expect("by id prefix").id, b.id);
    // A write repairs the index on disk.
    rt.block_on(store.apply(b.id, &complete(b.state), Guard::none())).expect("write");
    let index = std::fs::read_to_string(dir.path().join("index.json")).expect("index");
    assert!(index.contains(&b.id.to_string()) && index.contains(b.number.as_str()), "{index}");
}

/// Killed during an `import --replace` that renumbers a build, after the new document:
/// the index still names the old file, which wins; the next write removes the stray.
/// Without an index to decide, the two files are reported, not guessed between.
#[test]
fn an_interrupted_renumbering_keeps_the_indexed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    let mut parts = rt.block_on(store.export_build(b.id)).expect("export").into_parts().expect("valid");
    parts.build.number = BuildNumber::new("renumbered").expect("valid");
    let stray = dir.path().join("builds/renumbered.json");
    let doc = buildstate_core::BuildDocument::from_parts(parts);
    std::fs::write(&stray, serde_json::to_string_pretty(&doc).expect("encode")).expect("write");

    assert_eq!(rt.block_on(store.list_builds(&BuildFilter::default())).expect("list").len(), 1);
    assert_eq!(rt.block_on(store.build(b.id)).expect("read").number, b.number, "the indexed file wins");
    rt.block_on(store.apply(b.id, &complete(b.state), Guard::none())).expect("write");
    assert!(!stray.exists(), "a write removes the stray");

    std::fs::write(&stray, serde_json::to_string_pretty(&doc).expect("encode")).expect("write");
    std::fs::remove_file(dir.path().join("index.json")).expect("remove the index");
    let text = backend_naming(rt.block_on(store.build(b.id)), &stray);
    assert!(text.contains("is in 2 files"), "{text}");
}

/// An `import --replace` that renumbers a build completes as one change.
#[test]
fn a_renumbering_import_moves_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    let mut parts = rt.block_on(store.export_build(b.id)).expect("export").into_parts().expect("valid");
    parts.build.number = BuildNumber::new("renumbered").expect("valid");
    let imported =
        rt.block_on(store.import_build(parts, buildstate_store::ImportMode::Replace)).expect("import");
    assert_eq!((imported.id, imported.number.as_str()), (b.id, "renumbered"));
    assert!(dir.path().join("builds/renumbered.json").exists());
    assert!(!dir.path().join(format!("builds/{}.json", b.number)).exists(), "the old file is gone");
    assert!(matches!(rt.block_on(store.find_build(b.number.as_str())), Err(StoreError::BuildNotFound(_))));
    assert_eq!(rt.block_on(store.find_build("renumbered")).expect("find").id, b.id);
}
