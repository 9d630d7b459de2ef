//! The catalog: platforms, OS versions and image types.

use buildstate_core::{Build, CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use buildstate_store::{StoreError, StoreResult};
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use crate::error::{PgContext, is_unique_violation};
use crate::rows::{self, execute};
use crate::sql::{self, IMAGE_TYPES, KindSql, OS_VERSIONS, PLATFORMS};

fn statements(kind: CatalogKind) -> &'static KindSql {
    match kind {
        CatalogKind::Platform => &PLATFORMS,
        CatalogKind::Os => &OS_VERSIONS,
        CatalogKind::ImageType => &IMAGE_TYPES,
    }
}

/// Adds an item. A concurrent add of the same name that commits first makes this one
/// hit the primary key: the same `AlreadyExists` as when the name was taken before.
pub(crate) async fn add(tx: &Transaction<'_>, item: &CatalogItem) -> StoreResult<()> {
    buildstate_store::check_catalog_item(item)?;
    let exists = || StoreError::AlreadyExists { what: item.kind().as_str(), key: item.name().to_string() };
    if rows::exists(tx, statements(item.kind()).exists, &[&item.name().as_str()]).await? {
        return Err(exists());
    }
    match insert(tx, item, statements(item.kind()).insert).await {
        Err(e) if is_unique_violation(&e) => Err(exists()),
        other => other.ctx("insert a catalog item").map(drop),
    }
}

/// Runs `sql` (an insert of every column of the item's table) for `item`.
async fn insert(tx: &Transaction<'_>, item: &CatalogItem, sql: &str) -> Result<u64, tokio_postgres::Error> {
    match item {
        CatalogItem::Platform(p) => {
            rows::execute_raw(tx, sql, &[&p.name.as_str(), &p.display_name, &p.provider, &p.region]).await
        }
        CatalogItem::Os(o) => {
            let (major, minor) = (i64::from(o.major), o.minor.map(i64::from));
            rows::execute_raw(tx, sql, &[&o.name.as_str(), &o.display_name, &o.family, &major, &minor]).await
        }
        CatalogItem::ImageType(i) => {
            rows::execute_raw(tx, sql, &[&i.name.as_str(), &i.display_name, &i.description]).await
        }
    }
}

pub(crate) async fn list(tx: &Transaction<'_>, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
    rows::all(tx, statements(kind).list, &[], |r| decode(kind, r)).await
}

pub(crate) async fn get(tx: &Transaction<'_>, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
    match rows::first(tx, statements(kind).get, &[&name.as_str()], |r| decode(kind, r)).await? {
        Some(item) => Ok(item),
        None => Err(not_found(tx, kind, name.as_str()).await?),
    }
}

/// Refuses while builds refer to the item; the foreign keys would refuse too, but
/// without saying how many builds. The item is locked first: a create that holds it
/// (see [`hold`]) finishes before the count, so the count includes its build.
pub(crate) async fn remove(tx: &Transaction<'_>, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    let sql = statements(kind);
    if !rows::exists(tx, sql.lock, &[&name.as_str()]).await? {
        return Err(not_found(tx, kind, name.as_str()).await?);
    }
    let builds =
        rows::first(tx, sql.builds_using, &[&name.as_str()], |r| r.try_get::<_, i64>(0).ctx("count builds"))
            .await?
            .unwrap_or(0);
    if builds > 0 {
        return Err(StoreError::CatalogItemInUse {
            kind,
            name: name.to_string(),
            builds: builds.unsigned_abs(),
        });
    }
    execute(tx, sql.delete, &[&name.as_str()], "delete a catalog item").await.map(drop)
}

/// `CatalogItemNotFound` unless the item exists; if it does, it is kept (locked
/// against removal) until the caller's transaction ends.
pub(crate) async fn hold(tx: &Transaction<'_>, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    if rows::exists(tx, statements(kind).hold, &[&name.as_str()]).await? {
        Ok(())
    } else {
        Err(not_found(tx, kind, name.as_str()).await?)
    }
}

/// The error for a missing item, listing the names that do exist.
async fn not_found(tx: &Transaction<'_>, kind: CatalogKind, name: &str) -> StoreResult<StoreError> {
    const SHOWN: usize = 20;
    let names =
        rows::all(tx, statements(kind).names, &[], |r| r.try_get::<_, String>(0).ctx("read a name")).await?;
    let known = match names.len() {
        0 => "none yet".to_owned(),
        n if n > SHOWN => format!("{}, … ({n} in all)", names[..SHOWN].join(", ")),
        _ => names.join(", "),
    };
    Ok(StoreError::CatalogItemNotFound { kind, name: name.to_owned(), known })
}

/// The cloud provider of a platform, if the platform is in the catalog.
pub(crate) async fn provider(tx: &Transaction<'_>, platform: &Name) -> StoreResult<Option<String>> {
    rows::first(tx, sql::PLATFORM_PROVIDER, &[&platform.as_str()], |r| r.try_get(0).ctx("read a provider"))
        .await
}

/// Adds the catalog items an imported build names that this store lacks, with what
/// the document tells (the platform's provider) and neutral defaults for the rest.
pub(crate) async fn register_missing(
    tx: &Transaction<'_>,
    build: &Build,
    provider: Option<&str>,
) -> StoreResult<()> {
    let [platform, os, image_type] = buildstate_store::implied_catalog_items(build, provider);
    for item in [platform, os, image_type] {
        let sql = statements(item.kind());
        if !rows::exists(tx, sql.exists, &[&item.name().as_str()]).await? {
            buildstate_store::check_catalog_item(&item)?;
            // A concurrent import registering the same item is no conflict.
            insert(tx, &item, sql.insert_if_missing).await.ctx("register a catalog item")?;
        }
    }
    Ok(())
}

fn decode(kind: CatalogKind, row: &Row) -> StoreResult<CatalogItem> {
    let raw_name: String = row.try_get(0).ctx("read a catalog name")?;
    let bad = |e: String| StoreError::Backend {
        context: "corrupt catalog row in the postgres store",
        source: format!("{kind} `{raw_name}`: {e}").into(),
    };
    let get_err = |e: tokio_postgres::Error| bad(e.to_string());
    let unsigned = |n: i64| u32::try_from(n).map_err(|_| bad(format!("{n} is out of range")));
    let name = Name::new(&raw_name).map_err(|e| bad(e.to_string()))?;
    let display_name: String = row.try_get(1).map_err(get_err)?;
    Ok(match kind {
        CatalogKind::Platform => CatalogItem::Platform(Platform {
            name,
            display_name,
            provider: row.try_get(2).map_err(get_err)?,
            region: row.try_get(3).map_err(get_err)?,
        }),
        CatalogKind::Os => CatalogItem::Os(OsVersion {
            name,
            display_name,
            family: row.try_get(2).map_err(get_err)?,
            major: unsigned(row.try_get(3).map_err(get_err)?)?,
            minor: row.try_get::<_, Option<i64>>(4).map_err(get_err)?.map(unsigned).transpose()?,
        }),
        CatalogKind::ImageType => CatalogItem::ImageType(ImageType {
            name,
            display_name,
            description: row.try_get(2).map_err(get_err)?,
        }),
    })
}
