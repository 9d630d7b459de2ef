//! Files edited or truncated by hand: a clear error naming the file, never a panic.

use buildstate_core::{CatalogKind, LeaseRequest};
use buildstate_store::{BuildFilter, FailureFilter, Store};

use super::*;

#[test]
fn a_truncated_build_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    let path = dir.path().join("builds").join(format!("{}.json", b.number));
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, &text[..text.len() / 2]).expect("truncate");

    let message = document_naming(rt.block_on(store.build(b.id)), &path);
    assert!(message.contains("not a buildstate build document"), "{message}");
    assert!(message.contains("EOF while parsing"), "says what is wrong: {message}");
    backend_naming(rt.block_on(store.list_builds(&BuildFilter::default())), &path);
    document_naming(rt.block_on(store.failures(&FailureFilter::default())), &path);
    document_naming(rt.block_on(store.find_build(b.number.as_str())), &path);
    let before = std::fs::read(&path).expect("read");
    document_naming(rt.block_on(store.apply(b.id, &complete(b.state), Guard::none())), &path);
    assert_eq!(std::fs::read(&path).expect("read"), before, "a failed write changes nothing");
}

#[test]
fn a_hand_edit_that_breaks_the_rules_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    let path = dir.path().join("builds").join(format!("{}.json", b.number));
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    doc["history"][1]["seq"] = serde_json::json!(7);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("encode")).expect("edit");
    let message = document_naming(rt.block_on(store.history(b.id)), &path);
    assert!(message.contains("history must run 1, 2, 3"), "{message}");

    // A document put under another build's name is not taken for that build.
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::remove_file(&path).expect("remove");
    let elsewhere = dir.path().join("builds/some-other-number.json");
    std::fs::write(&elsewhere, text).expect("write");
    let message = backend_naming(rt.block_on(store.list_builds(&BuildFilter::default())), &elsewhere);
    assert!(message.contains("named after its number"), "{message}");
}

#[test]
fn a_damaged_catalog_or_lease_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, b) = rt.block_on(store_with_build(dir.path()));
    let request = LeaseRequest {
        owner: "ci".into(),
        host: "h".into(),
        pid: 1,
        ttl: std::time::Duration::from_secs(30),
    };
    rt.block_on(store.acquire_lease(b.id, &request)).expect("acquire");

    let lease = dir.path().join("leases").join(format!("{}.json", b.id));
    std::fs::write(&lease, "{\"owner\": 7}").expect("damage the lease");
    backend_naming(rt.block_on(store.leases()), &lease);
    backend_naming(rt.block_on(store.acquire_lease(b.id, &request)), &lease);

    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, "[1, 2").expect("damage the catalog");
    backend_naming(rt.block_on(store.catalog(CatalogKind::Os)), &catalog);
    backend_naming(rt.block_on(store.create_build(&seed_fields())), &catalog);
}

/// The usual `NewBuild` without touching the catalog.
fn seed_fields() -> buildstate_core::NewBuild {
    buildstate_core::NewBuild {
        platform: name("aws-commercial"),
        os: name("rhel-8.8"),
        image_type: name("base"),
        number: None,
        catalog: buildstate_core::StateCatalog::default_catalog(),
        created_by: "tests".into(),
        ci_url: None,
        metadata: BTreeMap::new(),
    }
}

/// One damaged document does not hide the other builds from a listing: the error
/// carries the readable builds (filtered as asked) and names each damaged file.
#[test]
fn a_listing_keeps_the_readable_builds_and_names_the_damaged_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    let (store, damaged) = rt.block_on(store_with_build(dir.path()));
    let new = rt.block_on(seed(&store));
    let fine = rt.block_on(store.create_build(&new)).expect("create");
    let path = dir.path().join("builds").join(format!("{}.json", damaged.number));
    std::fs::write(&path, "{\"build_id\": ").expect("truncate");

    let listed = rt.block_on(store.list_builds(&BuildFilter::default()));
    let partial = match listed {
        Err(StoreError::Backend { source, .. }) => {
            assert!(source.to_string().contains(&path.display().to_string()), "names the file: {source}");
            source.downcast::<crate::UnreadableBuilds>().expect("the readable builds come with the error")
        }
        other => panic!("expected the partial listing, got {other:?}"),
    };
    assert_eq!(partial.builds.iter().map(|b| b.id).collect::<Vec<_>>(), [fine.id]);
    assert_eq!(partial.unreadable.len(), 1);
    assert_eq!(partial.unreadable[0].0, damaged.number);
    let none = BuildFilter { limit: Some(0), ..BuildFilter::default() };
    match rt.block_on(store.list_builds(&none)) {
        Err(StoreError::Backend { source, .. }) => {
            let partial = source.downcast::<crate::UnreadableBuilds>().expect("partial");
            assert!(partial.builds.is_empty() && partial.unreadable.len() == 1, "{partial:?}");
        }
        other => panic!("a damaged file is reported whatever the filter: {other:?}"),
    }
}
