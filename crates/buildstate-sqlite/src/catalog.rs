//! The catalog: platforms, OS versions and image types.

use buildstate_core::{Build, CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use buildstate_store::{StoreError, StoreResult};
use rusqlite::{Connection, Row, params};

use crate::error::SqlContext;
use crate::{rows, sql};

/// The statements of one catalog table.
struct KindSql {
    list: &'static str,
    get: &'static str,
    names: &'static str,
    exists: &'static str,
    builds_using: &'static str,
    delete: &'static str,
}

fn statements(kind: CatalogKind) -> &'static KindSql {
    const PLATFORM: KindSql = KindSql {
        list: sql::SELECT_PLATFORMS,
        get: sql::SELECT_PLATFORM,
        names: sql::PLATFORM_NAMES,
        exists: sql::PLATFORM_EXISTS,
        builds_using: sql::BUILDS_ON_PLATFORM,
        delete: sql::DELETE_PLATFORM,
    };
    const OS: KindSql = KindSql {
        list: sql::SELECT_OS_VERSIONS,
        get: sql::SELECT_OS_VERSION,
        names: sql::OS_NAMES,
        exists: sql::OS_EXISTS,
        builds_using: sql::BUILDS_ON_OS,
        delete: sql::DELETE_OS,
    };
    const IMAGE_TYPE: KindSql = KindSql {
        list: sql::SELECT_IMAGE_TYPES,
        get: sql::SELECT_IMAGE_TYPE,
        names: sql::IMAGE_TYPE_NAMES,
        exists: sql::IMAGE_TYPE_EXISTS,
        builds_using: sql::BUILDS_OF_IMAGE_TYPE,
        delete: sql::DELETE_IMAGE_TYPE,
    };
    match kind {
        CatalogKind::Platform => &PLATFORM,
        CatalogKind::Os => &OS,
        CatalogKind::ImageType => &IMAGE_TYPE,
    }
}

pub(crate) fn add(conn: &Connection, item: &CatalogItem) -> StoreResult<()> {
    buildstate_store::check_catalog_item(item)?;
    let exists = || StoreError::AlreadyExists { what: item.kind().as_str(), key: item.name().to_string() };
    if rows::exists(conn, statements(item.kind()).exists, [item.name().as_str()])? {
        return Err(exists());
    }
    insert(conn, item)
}

fn insert(conn: &Connection, item: &CatalogItem) -> StoreResult<()> {
    let result = match item {
        CatalogItem::Platform(p) => {
            conn.execute(sql::INSERT_PLATFORM, params![p.name.as_str(), p.display_name, p.provider, p.region])
        }
        CatalogItem::Os(o) => {
            conn.execute(sql::INSERT_OS, params![o.name.as_str(), o.display_name, o.family, o.major, o.minor])
        }
        CatalogItem::ImageType(i) => {
            conn.execute(sql::INSERT_IMAGE_TYPE, params![i.name.as_str(), i.display_name, i.description])
        }
    };
    result.ctx("insert a catalog item").map(drop)
}

pub(crate) fn list(conn: &Connection, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
    rows::all(conn, statements(kind).list, [], |r| decode(kind, r))
}

pub(crate) fn get(conn: &Connection, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
    match rows::first(conn, statements(kind).get, [name.as_str()], |r| decode(kind, r))? {
        Some(item) => Ok(item),
        None => Err(not_found(conn, kind, name.as_str())?),
    }
}

/// Refuses while builds refer to the item; the foreign keys would refuse too, but
/// without saying how many builds.
pub(crate) fn remove(conn: &Connection, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    let sql = statements(kind);
    let builds: i64 = conn.query_row(sql.builds_using, [name.as_str()], |r| r.get(0)).ctx("count builds")?;
    if builds > 0 {
        return Err(StoreError::CatalogItemInUse {
            kind,
            name: name.to_string(),
            builds: builds.unsigned_abs(),
        });
    }
    if conn.execute(sql.delete, [name.as_str()]).ctx("delete a catalog item")? == 0 {
        return Err(not_found(conn, kind, name.as_str())?);
    }
    Ok(())
}

/// `CatalogItemNotFound` unless the item exists.
pub(crate) fn require(conn: &Connection, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    if rows::exists(conn, statements(kind).exists, [name.as_str()])? {
        Ok(())
    } else {
        Err(not_found(conn, kind, name.as_str())?)
    }
}

/// The error for a missing item, listing the names that do exist.
fn not_found(conn: &Connection, kind: CatalogKind, name: &str) -> StoreResult<StoreError> {
    const SHOWN: usize = 20;
    let names = rows::all(conn, statements(kind).names, [], |r| r.get::<_, String>(0).ctx("read a name"))?;
    let known = match names.len() {
        0 => "none yet".to_owned(),
        n if n > SHOWN => format!("{}, … ({n} in all)", names[..SHOWN].join(", ")),
        _ => names.join(", "),
    };
    Ok(StoreError::CatalogItemNotFound { kind, name: name.to_owned(), known })
}

/// The cloud provider of a platform, if the platform is in the catalog.
pub(crate) fn provider(conn: &Connection, platform: &Name) -> StoreResult<Option<String>> {
    rows::first(conn, sql::PLATFORM_PROVIDER, [platform.as_str()], |r| r.get(0).ctx("read a provider"))
}

/// Adds the catalog items an imported build names that this store lacks, with what
/// the document tells (the platform's provider) and neutral defaults for the rest.
pub(crate) fn register_missing(conn: &Connection, build: &Build, provider: Option<&str>) -> StoreResult<()> {
    let [platform, os, image_type] = buildstate_store::implied_catalog_items(build, provider);
    for item in [platform, os, image_type] {
        if !rows::exists(conn, statements(item.kind()).exists, [item.name().as_str()])? {
            buildstate_store::check_catalog_item(&item)?;
            insert(conn, &item)?;
        }
    }
    Ok(())
}

fn decode(kind: CatalogKind, row: &Row<'_>) -> StoreResult<CatalogItem> {
    let raw_name: String = row.get(0).ctx("read a catalog name")?;
    let bad = |e: String| StoreError::Backend {
        context: "corrupt catalog row in the sqlite store",
        source: format!("{kind} `{raw_name}`: {e}").into(),
    };
    let get_err = |e: rusqlite::Error| bad(e.to_string());
    let name = Name::new(&raw_name).map_err(|e| bad(e.to_string()))?;
    let display_name: String = row.get(1).map_err(get_err)?;
    Ok(match kind {
        CatalogKind::Platform => CatalogItem::Platform(Platform {
            name,
            display_name,
            provider: row.get(2).map_err(get_err)?,
            region: row.get(3).map_err(get_err)?,
        }),
        CatalogKind::Os => CatalogItem::Os(OsVersion {
            name,
            display_name,
            family: row.get(2).map_err(get_err)?,
            major: row.get(3).map_err(get_err)?,
            minor: row.get(4).map_err(get_err)?,
        }),
        CatalogKind::ImageType => CatalogItem::ImageType(ImageType {
            name,
            display_name,
            description: row.get(2).map_err(get_err)?,
        }),
    })
}
