//! From SQLite errors to `StoreError`.

use buildstate_store::{StoreError, StoreResult};
use rusqlite::ErrorCode;

/// Attaches what was being done to a rusqlite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| from_sqlite(context, e))
    }
}

/// Busy errors stay `Backend` errors wrapping the rusqlite error, so that the retry loop
/// (`busy.rs`) can recognise them with [`is_busy`] and turn them into `Busy` only once
/// its patience is spent. Unique-constraint violations that the caller did not turn
/// into a precise `AlreadyExists` itself still become `AlreadyExists`.
pub(crate) fn from_sqlite(context: &'static str, e: rusqlite::Error) -> StoreError {
    if is_unique_violation(&e) {
        let key = match &e {
            rusqlite::Error::SqliteFailure(_, Some(msg)) => {
                msg.rsplit(": ").next().unwrap_or(msg.as_str()).to_owned()
            }
            _ => e.to_string(),
        };
        return StoreError::AlreadyExists { what: "record", key };
    }
    StoreError::backend(context, e)
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
    const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
    matches!(e.sqlite_extended_error_code(), Some(SQLITE_CONSTRAINT_PRIMARYKEY | SQLITE_CONSTRAINT_UNIQUE))
}

/// Lock contention: another connection holds the lock this one needs.
pub(crate) fn is_busy_sqlite(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// A busy error raised anywhere inside a unit of work.
pub(crate) fn is_busy(e: &StoreError) -> bool {
    match e {
        StoreError::Backend { source, .. } => {
            source.downcast_ref::<rusqlite::Error>().is_some_and(is_busy_sqlite)
        }
        _ => false,
    }
}
