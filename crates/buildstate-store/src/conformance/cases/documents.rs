use buildstate_core::{
    BuildDocument, BuildParts, BuildStatus, CatalogKind, DocumentError, EventKind, FORMAT, FailureClass,
};

use crate::conformance::Harness;
use crate::{BuildFilter, Guard, ImportMode, StoreError};

use super::support::*;

pub async fn export_import_round_trip(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = rich_build(st).await;
    let doc = export(st, b.id).await;
    assert_eq!(doc.format, FORMAT);
    assert_eq!((doc.build_id, &doc.build_number, doc.current_state), (b.id, &b.number, b.state));
    assert_eq!((doc.status, doc.version, &doc.metadata), (b.status, b.version, &b.metadata));
    assert_eq!(doc.provider.as_deref(), Some("aws"), "the provider comes from the platform");
    assert_eq!(doc.history, history(st, b.id).await);
    assert_eq!(doc.errors.len(), 2);
    assert_eq!(doc.artifacts.len(), 1);
    assert_eq!(doc.resume_token, format!("bs1:{}:{}:{}", b.id, b.state, b.version));

    // The JSON text is lossless.
    let text = serde_json::to_string_pretty(&doc).expect("a document serializes");
    let parts = BuildDocument::parse(&text).expect("an exported document parses");
    assert_eq!(BuildDocument::from_parts(parts.clone()), doc);

    let r = st.import_build(parts.clone(), ImportMode::CreateOnly).await;
    assert!(
        matches!(r, Err(StoreError::AlreadyExists { .. })),
        "create-only import of an existing build, got {r:?}"
    );
    assert_eq!(export(st, b.id).await, doc, "a refused import changed the store");
    let same_number = renamed(&doc, b.number.as_str());
    let r = st.import_build(same_number.into_parts().expect("valid"), ImportMode::CreateOnly).await;
    assert!(matches!(r, Err(StoreError::AlreadyExists { .. })), "a new id with a taken number, got {r:?}");
    let mut same_id = renamed(&doc, "another-number").into_parts().expect("valid");
    same_id.build.id = b.id;
    for f in &mut same_id.failures {
        f.build_id = b.id;
    }
    let r = st.import_build(same_id, ImportMode::CreateOnly).await;
    assert!(matches!(r, Err(StoreError::AlreadyExists { .. })), "a taken id with a new number, got {r:?}");

    let replaced = st.import_build(parts.clone(), ImportMode::Replace).await.expect("replace with itself");
    assert_eq!(replaced, parts.build);
    assert_eq!(export(st, b.id).await, doc, "replacing a build with its own document changes nothing");

    // Replace restores the document over later changes: build, history, failures, artifacts.
    run(st, b.id, start(20)).await;
    run(st, b.id, fail(20, FailureClass::Transient, 3)).await;
    st.add_artifact(b.id, &artifact("disk", "s3://x/disk"), Guard::none()).await.expect("add artifact");
    st.import_build(parts, ImportMode::Replace).await.expect("replace with the older document");
    assert_eq!(export(st, b.id).await, doc, "replace puts back exactly the document");
    assert_eq!(history(st, b.id).await, doc.history);

    // A copy under a new identity imports beside it, equal to the document.
    let copy = renamed(&doc, "copy-of-rich-build");
    let imported = st
        .import_build(copy.clone().into_parts().expect("valid"), ImportMode::CreateOnly)
        .await
        .expect("import a copy");
    assert_eq!(imported.id, copy.build_id);
    assert_eq!(export(st, copy.build_id).await, copy, "import then export is lossless");
    assert_eq!(st.find_build("copy-of-rich").await.expect("find the copy").id, copy.build_id);
    assert_eq!(export(st, b.id).await, doc, "importing a copy leaves the original alone");
    assert_eq!(st.list_builds(&BuildFilter::default()).await.expect("list").len(), 2);
    // The copy is a live build: the rules continue from its document.
    run(st, copy.build_id, start(20)).await;
}

pub async fn import_registers_missing_catalog_items(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = rich_build(st).await;
    let mut parts = renamed(&export(st, b.id).await, "imported-from-elsewhere").into_parts().expect("valid");
    parts.build.platform = name("openstack-dc2");
    parts.build.os = name("sles-15.7");
    parts.build.image_type = name("openvpn");
    parts.provider = Some("openstack".into());
    let doc = BuildDocument::from_parts(parts.clone());
    st.import_build(parts, ImportMode::CreateOnly).await.expect("import with unknown catalog items");
    for (kind, n) in [
        (CatalogKind::Platform, "openstack-dc2"),
        (CatalogKind::Os, "sles-15.7"),
        (CatalogKind::ImageType, "openvpn"),
    ] {
        let item = st.catalog_item(kind, &name(n)).await;
        assert!(item.is_ok(), "import registers the missing {kind} `{n}`, got {item:?}");
    }
    assert_eq!(export(st, doc.build_id).await, doc, "the imported build exports as its document");
    let r = st.remove_catalog_item(CatalogKind::Platform, &name("openstack-dc2")).await;
    assert!(
        matches!(r, Err(StoreError::CatalogItemInUse { .. })),
        "the registered item is in use, got {r:?}"
    );
    assert_eq!(st.catalog(CatalogKind::Platform).await.expect("list").len(), 2);
}

/// What a hand edit or a torn upload does to a document: a label and the edit.
type Edit<'a> = (&'a str, &'a dyn Fn(&mut serde_json::Value));

pub async fn import_refuses_broken_documents(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = rich_build(st).await;
    let doc = export(st, b.id).await;
    let good = serde_json::to_value(&doc).expect("a document serializes");
    let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        BuildDocument::parse(&v.to_string())
    };
    let inconsistent: [Edit<'_>; 6] = [
        ("a gap in history seq", &|v| v["history"][2]["seq"] = serde_json::json!(9)),
        ("a wrong resume token", &|v| v["resume_token"] = serde_json::json!("bs1:0:0:1")),
        ("a resume token of another version", &|v| v["version"] = serde_json::json!(1)),
        ("a failure numbered out of order", &|v| v["errors"][0]["number"] = serde_json::json!(2)),
        ("an empty history", &|v| v["history"] = serde_json::json!([])),
        ("a state name that is not the catalog's", &|v| v["state_name"] = serde_json::json!("nope")),
    ];
    for (what, edit) in inconsistent {
        let r = broken(edit);
        assert!(matches!(r, Err(DocumentError::Inconsistent(_))), "{what} → Inconsistent, got {r:?}");
    }
    let malformed: [Edit<'_>; 4] = [
        ("state 250", &|v| v["current_state"] = serde_json::json!(250)),
        ("status `bogus`", &|v| v["status"] = serde_json::json!("bogus")),
        ("an unknown field", &|v| v["extra"] = serde_json::json!(1)),
        ("a missing field", &|v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("history");
            }
        }),
    ];
    for (what, edit) in malformed {
        let r = broken(edit);
        assert!(matches!(r, Err(DocumentError::Malformed(_))), "{what} → Malformed, got {r:?}");
    }
    let r = broken(&|v| v["format"] = serde_json::json!("buildstate.build/v9"));
    assert!(matches!(r, Err(DocumentError::Format(_))), "an unknown format, got {r:?}");
    let text = good.to_string();
    let truncated = BuildDocument::parse(&text[..text.len() / 2]);
    assert!(matches!(truncated, Err(DocumentError::Malformed(_))), "a truncated file, got {truncated:?}");
    assert!(StoreError::from(DocumentError::Malformed("x".into())).to_string().contains("not a buildstate"));
    assert_eq!(export(st, b.id).await, doc, "the store is untouched");
}

// ── hostile text ─────────────────────────────────────────────────────────────────

/// An import replays the document's history through the rules (every backend the same
/// way): parts that no sequence of transitions produces are refused, and so is a
/// provider that contradicts the store's catalog. Nothing is stored.
pub async fn import_replays_history_and_checks_the_provider(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = rich_build(st).await;
    let doc = export(st, b.id).await;
    let fresh = renamed(&doc, "replay-copy-1").into_parts().expect("a renamed export is valid");
    let before = st.list_builds(&BuildFilter::default()).await.expect("list");
    let mut tampered: Vec<(&str, BuildParts)> = Vec::new();
    let mut p = fresh.clone();
    p.build.version = i64::MAX as u64;
    tampered.push(("a version no history explains", p));
    let mut p = fresh.clone();
    p.history[1].kind = EventKind::Created;
    tampered.push(("a second created event", p));
    let mut p = fresh.clone();
    p.build.attempt_started_at = Some(p.build.updated_at);
    p.build.status = BuildStatus::Running;
    tampered.push(("an attempt its history never opened", p));
    let mut p = fresh.clone();
    p.artifacts.push(p.artifacts[0].clone());
    tampered.push(("two artifacts of one name", p));
    let mut p = fresh.clone();
    p.provider = Some("gcp".into());
    tampered.push(("a provider the catalog contradicts", p));
    for (what, parts) in tampered {
        match st.import_build(parts, ImportMode::CreateOnly).await {
            Err(StoreError::Document(DocumentError::Inconsistent(_))) => {}
            other => panic!("importing {what} → Document(Inconsistent), got {other:?}"),
        }
    }
    assert_eq!(st.list_builds(&BuildFilter::default()).await.expect("list"), before, "nothing was imported");
    st.import_build(fresh, ImportMode::CreateOnly).await.expect("the untampered copy imports");
}
