//! The catalog: platforms, OS versions and image types.

use buildstate_core::{Build, CatalogItem, CatalogKind, Name};

use super::Tx;
use crate::{StoreError, StoreResult, check_catalog_item, implied_catalog_items};

pub(crate) async fn add(tx: &mut dyn Tx, item: &CatalogItem) -> StoreResult<()> {
    check_catalog_item(item)?;
    if tx.catalog_item(item.kind(), item.name()).await?.is_some() {
        return Err(StoreError::AlreadyExists { what: item.kind().as_str(), key: item.name().to_string() });
    }
    tx.insert_catalog_item(item).await
}

pub(crate) async fn get(tx: &mut dyn Tx, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
    match tx.catalog_item(kind, name).await? {
        Some(item) => Ok(item),
        None => Err(not_found(tx, kind, name).await?),
    }
}

/// Refuses while builds refer to the item, saying how many.
pub(crate) async fn remove(tx: &mut dyn Tx, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    get(tx, kind, name).await?;
    let builds = tx.builds_using(kind, name).await?;
    if builds > 0 {
        return Err(StoreError::CatalogItemInUse { kind, name: name.to_string(), builds });
    }
    tx.delete_catalog_item(kind, name).await
}

/// `CatalogItemNotFound` unless the item exists.
pub(crate) async fn require(tx: &mut dyn Tx, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    get(tx, kind, name).await.map(drop)
}

/// The error for a missing item, listing the names that do exist.
async fn not_found(tx: &mut dyn Tx, kind: CatalogKind, name: &Name) -> StoreResult<StoreError> {
    const SHOWN: usize = 20;
    let names: Vec<String> = tx.catalog(kind).await?.iter().map(|i| i.name().to_string()).collect();
    let known = match names.len() {
        0 => "none yet".to_owned(),
        n if n > SHOWN => format!("{}, … ({n} in all)", names[..SHOWN].join(", ")),
        _ => names.join(", "),
    };
    Ok(StoreError::CatalogItemNotFound { kind, name: name.to_string(), known })
}

/// The cloud provider of a platform, if the platform is in the catalog.
pub(crate) async fn provider(tx: &mut dyn Tx, platform: &Name) -> StoreResult<Option<String>> {
    Ok(match tx.catalog_item(CatalogKind::Platform, platform).await? {
        Some(CatalogItem::Platform(p)) => Some(p.provider),
        _ => None,
    })
}

/// Adds the catalog items an imported build names that this store lacks, with what the
/// document tells (the platform's provider) and neutral defaults for the rest.
pub(crate) async fn register_missing(
    tx: &mut dyn Tx,
    build: &Build,
    provider: Option<&str>,
) -> StoreResult<()> {
    for item in implied_catalog_items(build, provider) {
        if tx.catalog_item(item.kind(), item.name()).await?.is_none() {
            check_catalog_item(&item)?;
            tx.insert_catalog_item(&item).await?;
        }
    }
    Ok(())
}
