//! `catalog.json`: the platforms, OS versions and image types, each list sorted by name.

use buildstate_core::{CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use buildstate_store::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Catalog {
    #[serde(default)]
    platforms: Vec<Platform>,
    #[serde(default)]
    os_versions: Vec<OsVersion>,
    #[serde(default)]
    image_types: Vec<ImageType>,
}

impl Catalog {
    pub(crate) fn to_json(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| StoreError::backend("encode the catalog", e))
    }

    /// Every item of a kind, by name.
    pub(crate) fn items(&self, kind: CatalogKind) -> Vec<CatalogItem> {
        let mut items: Vec<CatalogItem> = match kind {
            CatalogKind::Platform => self.platforms.iter().cloned().map(CatalogItem::Platform).collect(),
            CatalogKind::Os => self.os_versions.iter().cloned().map(CatalogItem::Os).collect(),
            CatalogKind::ImageType => self.image_types.iter().cloned().map(CatalogItem::ImageType).collect(),
        };
        // Sorted on write too; sorted here again in case the file was edited by hand.
        items.sort_by(|a, b| a.name().cmp(b.name()));
        items
    }

    pub(crate) fn get(&self, kind: CatalogKind, name: &Name) -> Option<CatalogItem> {
        self.items(kind).into_iter().find(|i| i.name() == name)
    }

    /// The cloud provider of a platform, if the platform is in the catalog.
    pub(crate) fn provider(&self, platform: &Name) -> Option<String> {
        self.platforms.iter().find(|p| &p.name == platform).map(|p| p.provider.clone())
    }

    /// Adds an item; the engine has checked that its name is free within its kind.
    pub(crate) fn insert(&mut self, item: CatalogItem) {
        match item {
            CatalogItem::Platform(p) => insert_sorted(&mut self.platforms, p, |p| &p.name),
            CatalogItem::Os(o) => insert_sorted(&mut self.os_versions, o, |o| &o.name),
            CatalogItem::ImageType(i) => insert_sorted(&mut self.image_types, i, |i| &i.name),
        }
    }

    pub(crate) fn remove(&mut self, kind: CatalogKind, name: &Name) {
        fn drop_named<T>(items: &mut Vec<T>, name: &Name, key: impl Fn(&T) -> &Name) {
            items.retain(|i| key(i) != name);
        }
        match kind {
            CatalogKind::Platform => drop_named(&mut self.platforms, name, |p| &p.name),
            CatalogKind::Os => drop_named(&mut self.os_versions, name, |o| &o.name),
            CatalogKind::ImageType => drop_named(&mut self.image_types, name, |i| &i.name),
        }
    }
}

fn insert_sorted<T>(items: &mut Vec<T>, item: T, key: impl Fn(&T) -> &Name) {
    let at = items.partition_point(|i| key(i) < key(&item));
    items.insert(at, item);
}
