//! From PostgreSQL errors to `StoreError`.
//!
//! Errors keep the driver's error inside `StoreError::Backend` until the unit of work
//! ends, so that the retry loop (`tx.rs`) can recognise the ones worth another try
//! ([`is_transient`]) and the ones that mean the server is gone ([`is_connection_lost`]).
//! Driver messages never contain the connection string, so nothing here can leak a
//! password.

use std::error::Error;
use std::fmt::{self, Display};

use buildstate_store::{StoreError, StoreResult};
use tokio_postgres::error::SqlState;

/// Attaches what was being done to a driver error.
pub(crate) trait PgContext<T> {
    fn ctx(self, context: &'static str) -> StoreResult<T>;
}

impl<T> PgContext<T> for Result<T, tokio_postgres::Error> {
    fn ctx(self, context: &'static str) -> StoreResult<T> {
        self.map_err(|e| from_pg(context, e))
    }
}

/// A driver error as a `Backend` error, keeping the driver's error for
/// [`is_transient`] and [`is_connection_lost`].
pub(crate) fn from_pg(context: &'static str, e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(context, PgError(e))
}

/// A driver error, shown with what the server said: the driver's own `Display` says
/// only "db error", keeping the server's message, detail and hint in its source.
#[derive(Debug)]
pub(crate) struct PgError(pub(crate) tokio_postgres::Error);

impl Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            return write!(f, "{db}");
        }
        write!(f, "{}", self.0)?;
        match self.0.source() {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

impl Error for PgError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

/// An insert of a key the engine found free (or referring to a catalog item it found
/// present) in this transaction: a unique or foreign-key violation means a concurrent
/// writer committed in between, so it is [`Raced`] and the unit of work runs again;
/// anything else is [`from_pg`].
pub(crate) fn raced(context: &'static str, e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) || e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        return StoreError::backend(context, Raced(PgError(e).to_string()));
    }
    from_pg(context, e)
}

/// The driver error inside a `Backend` error, if that is what it wraps.
fn driver_error(e: &StoreError) -> Option<&tokio_postgres::Error> {
    match e {
        StoreError::Backend { source, .. } => source.downcast_ref::<PgError>().map(|e| &e.0),
        _ => None,
    }
}

/// A failure that running the whole unit of work again resolves: a deadlock (`40P01`:
/// PostgreSQL aborted one of two transactions waiting on each other's row locks), a
/// serialization failure (`40001`, on a server whose default isolation is
/// `serializable`), an insert that [`Raced`] a concurrent writer, or a pooled connection
/// found dead before anything was sent on it.
pub(crate) fn is_transient(e: &StoreError) -> bool {
    if let Some(pg) = driver_error(e) {
        return matches!(pg.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE);
    }
    matches!(e, StoreError::Backend { source, .. } if source.is::<Raced>() || source.is::<StaleConnection>())
}

/// The connection broke (server down or restarted, network gone, the session
/// terminated by an administrator): not a fault of the data, and not retried — a commit
/// whose answer was lost may have happened.
pub(crate) fn is_connection_lost(e: &StoreError) -> bool {
    if matches!(e, StoreError::Backend { source, .. } if source.is::<StaleConnection>()) {
        return true;
    }
    driver_error(e).is_some_and(|pg| match pg.code() {
        // Class 08 (connection exception) and 57P0x (the server shutting down or
        // terminating this session).
        Some(code) => code.code().starts_with("08") || code.code().starts_with("57P0"),
        None => pg.is_closed() || pg.source().is_some_and(|s| s.is::<std::io::Error>()),
    })
}

/// A concurrent writer committed the key an insert needed free (a build number chosen
/// by hand landing on the one just allocated, the same import twice at once, the same
/// catalog item added twice) or removed what it refers to. The unit of work runs again
/// and the engine decides on what is stored: the next number, or `AlreadyExists`, or
/// `CatalogItemNotFound`.
#[derive(Debug, thiserror::Error)]
#[error("a concurrent writer committed first: {0}")]
pub(crate) struct Raced(pub(crate) String);

/// A pooled connection that turned out dead when its transaction began (the server
/// restarted, or ended the session, while it sat in the pool). Nothing was sent on it,
/// so the unit of work runs again on another connection.
#[derive(Debug, thiserror::Error)]
#[error("a pooled connection was closed: {0}")]
pub(crate) struct StaleConnection(pub(crate) String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raced_is_transient_and_other_errors_are_not() {
        let taken = StoreError::backend("insert build", Raced("x-001".into()));
        assert!(is_transient(&taken));
        assert!(!is_connection_lost(&taken));
        assert!(!is_transient(&StoreError::InvalidInput("x".into())));
        assert!(!is_transient(&StoreError::backend("x", std::io::Error::other("boom"))));
        let stale = StoreError::backend("begin", StaleConnection("connection closed".into()));
        assert!(is_transient(&stale) && is_connection_lost(&stale));
    }
}
