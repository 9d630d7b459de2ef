//! The connection settings, and the SQL of migrations. The statements of the store
//! are shared with PostgreSQL (`buildstate_store::sql::text`); the benchmark runs them,
//! with these settings ([`configure`]), on a bare `rusqlite` connection as its
//! baseline ([`placeholders`] turns their `$N` into `?N`).

use rusqlite::Connection;

pub use crate::conn::placeholders;

/// How long one connection waits for a lock before reporting busy, in the baseline.
/// [`crate::SqliteStore`] replaces SQLite's timeout handler with a jittered one of the
/// same bound (see `busy.rs`).
pub const BUSY_TIMEOUT_MS: u32 = 60_000;

/// Applies the connection settings the backend uses.
///
/// - `journal_mode = WAL`: readers never block the writer nor the writer readers, so
///   `list`/`show` stay instant while a pipeline records a milestone. Persistent in the
///   file; setting it again is a no-op.
/// - `synchronous = FULL`: a transition is fsynced to the WAL before `apply` returns, so
///   a recorded milestone survives power loss, not only a crash of the process. (WAL's
///   usual `NORMAL` may lose the last commits on power loss.) Transitions are rare — one
///   per milestone of a 30–90 minute build — so the fsync costs nothing that matters.
/// - `foreign_keys = ON`: builds cannot name a missing platform, OS or image type, and
///   deleting a build takes its history, failures and artifacts with it.
/// - `busy_timeout`: wait for the write lock of another process instead of failing.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // First, so that switching a fresh file to WAL waits for other processes doing the same.
    conn.busy_timeout(std::time::Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))?;
    // Not settable inside a transaction. Answers the mode in force: "wal", or another
    // mode where WAL is impossible (in-memory databases, some network file systems).
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "sqlite could not switch to WAL; readers will wait for writers");
    }
    // Per-connection settings: not stored in the file, so every open sets them.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
}

// ── migrations ─────────────────────────────────────────────────────────────────────

pub(crate) const USER_VERSION: &str = "PRAGMA user_version";
pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, \
     applied_at INTEGER NOT NULL) STRICT";
pub(crate) const SELECT_MIGRATIONS: &str =
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version";
pub(crate) const INSERT_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)";
