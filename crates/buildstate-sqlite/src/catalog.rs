//! The catalog: platforms, OS versions and image types.

use buildstate_core::{CatalogItem, CatalogKind, ImageType, Name, OsVersion, Platform};
use buildstate_store::{StoreError, StoreResult};
use rusqlite::{Connection, Row, params};

use crate::error::SqlContext;
use crate::{rows, sql};

/// The statements of one catalog table.
struct KindSql {
    list: &'static str,
    get: &'static str,
    builds_using: &'static str,
    delete: &'static str,
}

fn statements(kind: CatalogKind) -> &'static KindSql {
    const PLATFORM: KindSql = KindSql {
        list: sql::SELECT_PLATFORMS,
        get: sql::SELECT_PLATFORM,
        builds_using: sql::BUILDS_ON_PLATFORM,
        delete: sql::DELETE_PLATFORM,
    };
    const OS: KindSql = KindSql {
        list: sql::SELECT_OS_VERSIONS,
        get: sql::SELECT_OS_VERSION,
        builds_using: sql::BUILDS_ON_OS,
        delete: sql::DELETE_OS,
    };
    const IMAGE_TYPE: KindSql = KindSql {
        list: sql::SELECT_IMAGE_TYPES,
        get: sql::SELECT_IMAGE_TYPE,
        builds_using: sql::BUILDS_OF_IMAGE_TYPE,
        delete: sql::DELETE_IMAGE_TYPE,
    };
    match kind {
        CatalogKind::Platform => &PLATFORM,
        CatalogKind::Os => &OS,
        CatalogKind::ImageType => &IMAGE_TYPE,
    }
}

pub(crate) fn insert(conn: &Connection, item: &CatalogItem) -> StoreResult<()> {
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

pub(crate) fn get(conn: &Connection, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>> {
    rows::first(conn, statements(kind).get, [name.as_str()], |r| decode(kind, r))
}

pub(crate) fn delete(conn: &Connection, kind: CatalogKind, name: &Name) -> StoreResult<()> {
    conn.execute(statements(kind).delete, [name.as_str()]).ctx("delete a catalog item").map(drop)
}

pub(crate) fn builds_using(conn: &Connection, kind: CatalogKind, name: &Name) -> StoreResult<u64> {
    let builds: i64 =
        conn.query_row(statements(kind).builds_using, [name.as_str()], |r| r.get(0)).ctx("count builds")?;
    Ok(builds.unsigned_abs())
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
