use buildstate_core::CatalogKind;

use crate::conformance::Harness;
use crate::{BuildFilter, StoreError};

use super::support::*;

pub async fn catalog_add_list_show_remove(h: &impl Harness) {
    let s = h.open().await;
    let kinds = [
        (
            CatalogKind::Platform,
            vec![
                platform("zeta-cloud", "openstack", Some("datacenter-1")),
                platform("aws-commercial", "aws", Some("us-east-1")),
                platform("cloudfoundry", "cloudfoundry", None),
            ],
        ),
        (CatalogKind::Os, vec![os("ubuntu-24.04", Some(4)), os("rhel-8.8", Some(8)), os("sles-15", None)]),
        (CatalogKind::ImageType, vec![image("sapapp"), image("base"), image("hana")]),
    ];
    for (kind, items) in &kinds {
        for item in items {
            s.add_catalog_item(item).await.unwrap_or_else(|e| panic!("add {kind} `{}`: {e}", item.name()));
        }
        let mut sorted = items.clone();
        sorted.sort_by(|a, b| a.name().cmp(b.name()));
        let listed = s.catalog(*kind).await.unwrap_or_else(|e| panic!("list {kind}: {e}"));
        assert_eq!(listed, sorted, "{kind} list: every item, every field, sorted by name");
        for item in items {
            let shown =
                s.catalog_item(*kind, item.name()).await.unwrap_or_else(|e| panic!("show {kind}: {e}"));
            assert_eq!(&shown, item, "show returns the item as added");
        }
    }
    for (kind, items) in &kinds {
        let gone = &items[0];
        s.remove_catalog_item(*kind, gone.name())
            .await
            .unwrap_or_else(|e| panic!("remove unused {kind}: {e}"));
        assert!(
            matches!(s.catalog_item(*kind, gone.name()).await, Err(StoreError::CatalogItemNotFound { .. })),
            "a removed {kind} is gone"
        );
        let left = s.catalog(*kind).await.unwrap_or_else(|e| panic!("list {kind}: {e}"));
        assert_eq!(left.len(), 2, "removing one {kind} keeps the others");
        assert!(!left.contains(gone));
    }
}

pub async fn catalog_duplicates_unknowns_and_namespaces(h: &impl Harness) {
    let s = h.open().await;
    let original = platform("azure", "azure", Some("eastus"));
    s.add_catalog_item(&original).await.expect("add platform");
    let duplicate = platform("azure", "azure", Some("westeurope"));
    assert!(
        matches!(s.add_catalog_item(&duplicate).await, Err(StoreError::AlreadyExists { .. })),
        "a platform name that is taken → AlreadyExists"
    );
    let shown = s.catalog_item(CatalogKind::Platform, &name("azure")).await.expect("show platform");
    assert_eq!(shown, original, "a refused duplicate leaves the original as it was");
    assert_eq!(s.catalog(CatalogKind::Platform).await.expect("list").len(), 1);

    // Names are unique within a kind, not across kinds.
    for item in [platform("shared", "gcp", None), os("shared", None), image("shared")] {
        s.add_catalog_item(&item).await.unwrap_or_else(|e| panic!("`shared` as a {}: {e}", item.kind()));
    }
    for kind in CatalogKind::ALL {
        let item = s.catalog_item(*kind, &name("shared")).await.expect("show shared");
        assert_eq!(item.kind(), *kind);
        assert!(
            matches!(
                s.catalog_item(*kind, &name("nope")).await,
                Err(StoreError::CatalogItemNotFound { kind: k, .. }) if k == *kind
            ),
            "unknown {kind} → CatalogItemNotFound"
        );
        assert!(
            matches!(
                s.remove_catalog_item(*kind, &name("nope")).await,
                Err(StoreError::CatalogItemNotFound { kind: k, .. }) if k == *kind
            ),
            "removing an unknown {kind} → CatalogItemNotFound"
        );
    }
    assert_eq!(s.catalog(CatalogKind::Os).await.expect("list os").len(), 1);
}

pub async fn catalog_item_in_use_cannot_be_removed(h: &impl Harness) {
    let s = h.open().await;
    let new = seed(s.as_ref()).await;
    s.add_catalog_item(&platform("gcp", "gcp", Some("us-central1"))).await.expect("add unused platform");
    create(s.as_ref(), &new).await;
    create(s.as_ref(), &new).await;
    for (kind, n) in [
        (CatalogKind::Platform, "aws-commercial"),
        (CatalogKind::Os, "rhel-8.8"),
        (CatalogKind::ImageType, "base"),
    ] {
        let before = s.catalog_item(kind, &name(n)).await.expect("show used item");
        match s.remove_catalog_item(kind, &name(n)).await {
            Err(StoreError::CatalogItemInUse { kind: k, builds, .. }) => {
                assert_eq!(k, kind);
                assert_eq!(builds, 2, "CatalogItemInUse counts the builds using the {kind}");
            }
            other => {
                panic!("removing a {kind} used by builds → CatalogItemInUse, got {other:?}")
            }
        }
        assert_eq!(s.catalog_item(kind, &name(n)).await.expect("still there"), before);
    }
    s.remove_catalog_item(CatalogKind::Platform, &name("gcp")).await.expect("an unused platform can go");
    assert_eq!(s.list_builds(&BuildFilter::default()).await.expect("list").len(), 2);
}

// ── creating builds ──────────────────────────────────────────────────────────────
