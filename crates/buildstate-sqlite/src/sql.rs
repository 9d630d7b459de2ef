//! The SQL text of the backend, and the connection settings.
//!
//! The hot transition path (`Store::apply`) runs, inside one `BEGIN IMMEDIATE`
//! transaction: [`SELECT_BUILD_BY_ID`], [`SELECT_LEASE`] (for the fencing check),
//! [`UPDATE_BUILD_CAS`], then [`INSERT_EVENT`] per history event and [`INSERT_FAILURE`]
//! per failure record. They are public so that the
//! benchmark can run exactly the same statements, with the same settings
//! ([`configure`]), on a bare `rusqlite` connection as its baseline.
//!
//! Every statement binds its values as parameters (`?N`); nothing is ever formatted into
//! SQL text, so quotes, SQL keywords and NUL bytes in names and messages are just data.

use rusqlite::Connection;
// The column lists are shared with the other SQL backend, as are the decoders that
// read them (`buildstate_store::sql_rows`); only the JSON columns are named here.
use buildstate_store::{artifact_columns, build_columns, event_columns, failure_columns, lease_columns};

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

// ── the hot transition path (public: the benchmark's baseline runs these) ──────────

/// `?1` = build id. Columns as in [`INSERT_BUILD`].
pub const SELECT_BUILD_BY_ID: &str =
    concat!("SELECT ", build_columns!("catalog_json", "metadata_json"), " FROM builds WHERE id = ?1");

/// `?1` = build id. The build's lease record, released or not (`lease_columns!` order:
/// build_id, owner, host, pid, token, acquired_at, renewed_at, expires_at, released).
pub const SELECT_LEASE: &str = concat!("SELECT ", lease_columns!(), " FROM leases WHERE build_id = ?1");

/// Compare-and-swap of a build row after a transition: changes exactly one row, or none
/// when another writer got there first.
///
/// `?1` id, `?2` the version read (the swap's precondition), then the new values:
/// `?3` state, `?4` status, `?5` needs_intervention, `?6` attempt, `?7`
/// attempt_started_at, `?8` started_at, `?9` ended_at, `?10` updated_at, `?11`
/// metadata_json, `?12` version, `?13` history_len, `?14` failure_count.
pub const UPDATE_BUILD_CAS: &str = "UPDATE builds SET state = ?3, status = ?4, needs_intervention = ?5, \
     attempt = ?6, attempt_started_at = ?7, started_at = ?8, ended_at = ?9, updated_at = ?10, \
     metadata_json = ?11, version = ?12, history_len = ?13, failure_count = ?14 \
     WHERE id = ?1 AND version = ?2";

/// `?1`..`?14`: build_id, seq, at, kind, state, attempt, actor, started_at, duration_ms,
/// exit_code, message, log, from_state, forced.
pub const INSERT_EVENT: &str = concat!(
    "INSERT INTO events (",
    event_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
);

/// `?1`..`?14`: build_id, number, state, attempt, at, failure_type, class, component,
/// message, details_json, exit_code, resolved, resolution, resolved_at.
pub const INSERT_FAILURE: &str = concat!(
    "INSERT INTO failures (",
    failure_columns!("details_json"),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
);

// ── builds ─────────────────────────────────────────────────────────────────────────

/// `?1`..`?21`: the build columns, in order.
pub const INSERT_BUILD: &str = concat!(
    "INSERT INTO builds (",
    build_columns!("catalog_json", "metadata_json"),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
);
/// The start of every `list_builds` query; `builds.rs` appends fixed conditions.
pub(crate) const SELECT_BUILDS: &str =
    concat!("SELECT ", build_columns!("catalog_json", "metadata_json"), " FROM builds");
pub(crate) const BUILD_ID_BY_NUMBER: &str = "SELECT id FROM builds WHERE number = ?1";
/// Build numbers in `[?1, ?2)`: a prefix range that uses the unique index and, unlike
/// LIKE, gives `_` and `.` no special meaning.
pub(crate) const NUMBERS_IN_RANGE: &str = "SELECT number FROM builds WHERE number >= ?1 AND number < ?2";
/// Builds whose id is in `[?1, ?2)` or whose number is in `[?3, ?4)` (prefix ranges).
pub(crate) const PREFIX_CANDIDATES: &str = "SELECT id, number FROM builds \
     WHERE (id >= ?1 AND id < ?2) OR (number >= ?3 AND number < ?4) ORDER BY number LIMIT 100";
pub(crate) const DELETE_BUILD: &str = "DELETE FROM builds WHERE id = ?1";

// ── history, failures, artifacts ────────────────────────────────────────────────────

pub(crate) const SELECT_EVENTS: &str =
    concat!("SELECT ", event_columns!(), " FROM events WHERE build_id = ?1 ORDER BY seq");
/// The start of every `failures` query; `records.rs` appends fixed conditions.
pub(crate) const SELECT_FAILURES: &str =
    concat!("SELECT ", failure_columns!("details_json"), " FROM failures");
/// `?1` build_id, `?2` number, `?3` resolution, `?4` resolved_at.
pub(crate) const RESOLVE_FAILURE: &str =
    "UPDATE failures SET resolved = 1, resolution = ?3, resolved_at = ?4 WHERE build_id = ?1 AND number = ?2";

/// Insert, or replace in place (keeping the row, hence the listing order) by name.
/// `?1` build_id, then the artifact columns.
pub(crate) const UPSERT_ARTIFACT: &str = concat!(
    "INSERT INTO artifacts (build_id, ",
    artifact_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT (build_id, name) DO UPDATE SET kind = excluded.kind, uri = excluded.uri, \
     region = excluded.region, size_bytes = excluded.size_bytes, sha256 = excluded.sha256, \
     created_at = excluded.created_at"
);
pub(crate) const SELECT_ARTIFACTS: &str =
    concat!("SELECT ", artifact_columns!(), " FROM artifacts WHERE build_id = ?1 ORDER BY rowid");

// ── leases ─────────────────────────────────────────────────────────────────────────

/// Grant, renewal or re-insert after an import: the one row of a build, replaced in
/// place. `?1`..`?9` in `lease_columns!` order.
pub(crate) const UPSERT_LEASE: &str = concat!(
    "INSERT INTO leases (",
    lease_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
     ON CONFLICT (build_id) DO UPDATE SET owner = excluded.owner, host = excluded.host, \
     pid = excluded.pid, token = excluded.token, acquired_at = excluded.acquired_at, \
     renewed_at = excluded.renewed_at, expires_at = excluded.expires_at, released = excluded.released"
);
/// Every held lease, with its build's number (column 9).
pub(crate) const SELECT_HELD_LEASES: &str = "SELECT l.build_id, l.owner, l.host, l.pid, l.token, \
     l.acquired_at, l.renewed_at, l.expires_at, l.released, b.number \
     FROM leases l JOIN builds b ON b.id = l.build_id WHERE l.released = 0";

// ── catalog ────────────────────────────────────────────────────────────────────────

pub(crate) const INSERT_PLATFORM: &str =
    "INSERT INTO platforms (name, display_name, provider, region) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const INSERT_OS: &str =
    "INSERT INTO os_versions (name, display_name, family, major, minor) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(crate) const INSERT_IMAGE_TYPE: &str =
    "INSERT INTO image_types (name, display_name, description) VALUES (?1, ?2, ?3)";

pub(crate) const SELECT_PLATFORMS: &str =
    "SELECT name, display_name, provider, region FROM platforms ORDER BY name";
pub(crate) const SELECT_OS_VERSIONS: &str =
    "SELECT name, display_name, family, major, minor FROM os_versions ORDER BY name";
pub(crate) const SELECT_IMAGE_TYPES: &str =
    "SELECT name, display_name, description FROM image_types ORDER BY name";

pub(crate) const SELECT_PLATFORM: &str =
    "SELECT name, display_name, provider, region FROM platforms WHERE name = ?1";
pub(crate) const SELECT_OS_VERSION: &str =
    "SELECT name, display_name, family, major, minor FROM os_versions WHERE name = ?1";
pub(crate) const SELECT_IMAGE_TYPE: &str =
    "SELECT name, display_name, description FROM image_types WHERE name = ?1";

pub(crate) const BUILDS_ON_PLATFORM: &str = "SELECT count(*) FROM builds WHERE platform = ?1";
pub(crate) const BUILDS_ON_OS: &str = "SELECT count(*) FROM builds WHERE os = ?1";
pub(crate) const BUILDS_OF_IMAGE_TYPE: &str = "SELECT count(*) FROM builds WHERE image_type = ?1";

pub(crate) const DELETE_PLATFORM: &str = "DELETE FROM platforms WHERE name = ?1";
pub(crate) const DELETE_OS: &str = "DELETE FROM os_versions WHERE name = ?1";
pub(crate) const DELETE_IMAGE_TYPE: &str = "DELETE FROM image_types WHERE name = ?1";

// ── migrations ─────────────────────────────────────────────────────────────────────

pub(crate) const USER_VERSION: &str = "PRAGMA user_version";
pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, \
     applied_at INTEGER NOT NULL) STRICT";
pub(crate) const SELECT_MIGRATIONS: &str =
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version";
pub(crate) const INSERT_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)";
