//! The sample catalog triple, for backends' own tests beside the suite (crash and
//! concurrency tests with real processes).

use std::collections::BTreeMap;

use buildstate_core::{CatalogItem, ImageType, Name, NewBuild, OsVersion, Platform, StateCatalog};

use crate::{Store, StoreError};

fn name(s: &str) -> Name {
    Name::new(s).expect("valid name")
}

/// Adds `aws-commercial`, `rhel-8.8` and `base`, whoever gets there first: several
/// processes may seed one fresh store at once. Returns a new build of the triple.
pub async fn seed_sample_catalog(store: &(impl Store + ?Sized), created_by: &str) -> NewBuild {
    let items = [
        CatalogItem::Platform(Platform {
            name: name("aws-commercial"),
            display_name: "AWS".into(),
            provider: "aws".into(),
            region: Some("us-east-1".into()),
        }),
        CatalogItem::Os(OsVersion {
            name: name("rhel-8.8"),
            display_name: "RHEL 8.8".into(),
            family: "rhel".into(),
            major: 8,
            minor: Some(8),
        }),
        CatalogItem::ImageType(ImageType {
            name: name("base"),
            display_name: "Base".into(),
            description: String::new(),
        }),
    ];
    for item in items {
        match store.add_catalog_item(&item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("add catalog item: {e}"),
        }
    }
    NewBuild {
        platform: name("aws-commercial"),
        os: name("rhel-8.8"),
        image_type: name("base"),
        number: None,
        catalog: StateCatalog::default_catalog(),
        created_by: created_by.into(),
        ci_url: None,
        metadata: BTreeMap::new(),
    }
}
