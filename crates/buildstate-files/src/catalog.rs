//! The catalog: platforms, OS versions and image types.

use buildstate_core::{Build, CatalogItem, CatalogKind, Name};
use buildstate_store::{StoreError, StoreResult, check_catalog_item};

use crate::catalog_file::Catalog;
use crate::snapshot::{Snapshot, Txn};

pub(crate) fn add(tx: &Txn<'_>, item: &CatalogItem) -> StoreResult<()> {
    check_catalog_item(item)?;
    let mut catalog = tx.catalog()?;
    if catalog.contains(item.kind(), item.name()) {
        return Err(StoreError::AlreadyExists { what: item.kind().as_str(), key: item.name().to_string() });
    }
    catalog.insert(item.clone());
    tx.save_catalog(&catalog)
}

pub(crate) fn list(snap: &Snapshot<'_>, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
    Ok(snap.catalog()?.items(kind))
}

pub(crate) fn get(snap: &Snapshot<'_>, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
    let catalog = snap.catalog()?;
    catalog.get(kind, name).ok_or_else(|| not_found(&catalog, kind, name))
}

/// Refuses while builds refer to the item, saying how many.
pub(crate) fn remove(tx: &Txn<'_>, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    let mut catalog = tx.catalog()?;
    if !catalog.contains(kind, name) {
        return Err(not_found(&catalog, kind, name));
    }
    let entries = tx.entries()?;
    let builds = tx.all(&entries)?.iter().filter(|p| uses(&p.build, kind, name)).count() as u64;
    if builds > 0 {
        return Err(StoreError::CatalogItemInUse { kind, name: name.to_string(), builds });
    }
    catalog.remove(kind, name);
    tx.save_catalog(&catalog)
}

fn uses(build: &Build, kind: CatalogKind, name: &Name) -> bool {
    match kind {
        CatalogKind::Platform => &build.platform == name,
        CatalogKind::Os => &build.os == name,
        CatalogKind::ImageType => &build.image_type == name,
    }
}

/// `CatalogItemNotFound` unless the item exists.
pub(crate) fn require(catalog: &Catalog, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    if catalog.contains(kind, name) { Ok(()) } else { Err(not_found(catalog, kind, name)) }
}

/// The error for a missing item, listing the names that do exist.
fn not_found(catalog: &Catalog, kind: CatalogKind, name: &Name) -> StoreError {
    const SHOWN: usize = 20;
    let names = catalog.names(kind);
    let known = match names.len() {
        0 => "none yet".to_owned(),
        n if n > SHOWN => format!("{}, … ({n} in all)", names[..SHOWN].join(", ")),
        _ => names.join(", "),
    };
    StoreError::CatalogItemNotFound { kind, name: name.to_string(), known }
}

/// Adds the catalog items an imported build names that the catalog lacks, with what the
/// document tells (the platform's provider) and neutral defaults for the rest. Returns
/// whether anything was added.
pub(crate) fn register_missing(
    catalog: &mut Catalog,
    build: &Build,
    provider: Option<&str>,
) -> StoreResult<bool> {
    let [platform, os, image_type] = buildstate_store::implied_catalog_items(build, provider);
    let mut added = false;
    for item in [platform, os, image_type] {
        if !catalog.contains(item.kind(), item.name()) {
            check_catalog_item(&item)?;
            catalog.insert(item);
            added = true;
        }
    }
    Ok(added)
}
