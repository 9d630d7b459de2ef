//! Opening a database: directories, connection, pragmas, migrations.

use std::path::Path;
use std::time::Duration;

use buildstate_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::SqlContext;
use crate::{SqliteStore, busy, migrate, sql};

pub(crate) fn open(path: &Path, busy_limit: Duration) -> StoreResult<SqliteStore> {
    let location = path.display().to_string();
    let unavailable = |reason: String| StoreError::Unavailable { location: location.clone(), reason };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| unavailable(format!("cannot create the directory {}: {e}", parent.display())))?;
    }
    // Sixteen processes opening a fresh file at once contend for switching it to WAL and
    // for creating the schema; both can report busy without waiting, so the whole open
    // is retried.
    let (conn, version) = busy::retry(busy_limit, "open", || {
        let mut conn = connect(path)?;
        sql::configure(&conn).ctx("configure the connection")?;
        busy::install_handler(&mut conn, busy_limit).ctx("install the busy handler")?;
        let version = migrate::migrate(&mut conn, &location)?;
        Ok((conn, version))
    })
    .map_err(|e| match e {
        // Not a database, unreadable, read-only, …: say so about this file.
        StoreError::Backend { context, source } => unavailable(format!("{context}: {source}")),
        other => other,
    })?;
    Ok(SqliteStore::from_parts(location, conn, version, busy_limit, false))
}

/// A read-only connection: no pragma that writes, no migration, and a schema that must
/// already be current. In a read-only directory SQLite cannot create the WAL index
/// (`-shm`), so the file is then opened `immutable` — safe, because nobody can write
/// to it there either.
pub(crate) fn open_read_only(path: &Path, busy_limit: Duration) -> StoreResult<SqliteStore> {
    let location = path.display().to_string();
    let unavailable = |reason: String| StoreError::Unavailable { location: location.clone(), reason };
    if !path.is_file() {
        return Err(unavailable("there is no database file here".into()));
    }
    let flags =
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let attempt = |immutable: bool| -> rusqlite::Result<(Connection, u32)> {
        let suffix = if immutable { "&immutable=1" } else { "" };
        let conn = Connection::open_with_flags(format!("file:{}?mode=ro{suffix}", uri_path(path)), flags)?;
        let version: u32 = conn.query_row(sql::USER_VERSION, [], |r| r.get(0))?;
        Ok((conn, version))
    };
    let (mut conn, version) = attempt(false)
        .or_else(|_| attempt(true))
        .map_err(|e| unavailable(format!("cannot open it read-only: {e}")))?;
    if version != migrate::SCHEMA_VERSION {
        return Err(unavailable(format!(
            "its schema is version {version}, this buildstate reads {}; open it once with write access to migrate it",
            migrate::SCHEMA_VERSION
        )));
    }
    busy::install_handler(&mut conn, busy_limit).map_err(|e| unavailable(e.to_string()))?;
    Ok(SqliteStore::from_parts(location, conn, version, busy_limit, true))
}

/// `path` for a `file:` URI: `%`, `?` and `#` (and anything not printable ASCII)
/// percent-encoded, so no file name is read as URI syntax.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{b:02X}")),
            0x21..=0x7e => out.push(char::from(*b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn connect(path: &Path) -> StoreResult<Connection> {
    // No shared cache or URI parsing: a path is a path. NO_MUTEX because the handle's
    // own mutex already serialises every use of the connection.
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).ctx("open the database file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_parent_directories_and_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/c/store.db");
        let store = SqliteStore::open(&path).expect("open");
        assert!(path.exists());
        assert_eq!(store.schema_version(), crate::SCHEMA_VERSION);
        let reopened = SqliteStore::open(&path).expect("reopen");
        assert_eq!(reopened.schema_version(), crate::SCHEMA_VERSION);
    }

    #[test]
    fn sets_the_documented_pragmas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).expect("open");
        let (mode, sync, fk): (String, i64, i64) = store
            .with_conn(|c| {
                let mode = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).ctx("journal_mode")?;
                let sync = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).ctx("synchronous")?;
                let fk = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).ctx("foreign_keys")?;
                Ok((mode, sync, fk))
            })
            .expect("read pragmas");
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous = FULL");
        assert_eq!(fk, 1);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "this is not a database, it is a text file of some length\n".repeat(100))
            .expect("write");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable { location, reason }) => {
                assert!(location.ends_with("notes.txt"));
                assert!(reason.contains("not a database"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
