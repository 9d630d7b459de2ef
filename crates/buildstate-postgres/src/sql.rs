//! The SQL text of the backend.
//!
//! The hot transition path (`Store::apply`) runs, inside one transaction, in three
//! round trips (`tx.rs` pipelines them): `BEGIN`, [`LOCK_BUILD`] (a row lock, held to
//! commit) and [`SELECT_LEASE`] (the fencing record, read once the lock is held); then
//! [`UPDATE_BUILD_CAS`]; then [`INSERT_EVENT`] per history event, [`INSERT_FAILURE`]
//! per failure record and `COMMIT`. They are public so that a benchmark can run exactly
//! the same statements on a bare connection as its baseline.
//!
//! Every statement binds its values as parameters (`$N`); nothing is ever formatted into
//! SQL text, so quotes, SQL keywords and `%`/`_` in names and messages are just data.
//!
//! Locking rule: every write that changes a build's rows — the build, its history,
//! failures, artifacts or lease — first reads the build in a write transaction, which
//! locks its row ([`LOCK_BUILD`]), so the writes of one build are serialised and a
//! lease check can never race the write it guards.

use buildstate_core::CatalogKind;
// The column lists are shared with the other SQL backend, as are the decoders that
// read them (`buildstate_store::sql_rows`); only the JSON columns are named here.
use buildstate_store::{artifact_columns, build_columns, event_columns, failure_columns, lease_columns};

// ── the hot transition path ─────────────────────────────────────────────────────────

/// `$1` = build id. Locks the row until commit, so that writers of one build queue
/// here and each reads what the previous one committed (read committed: every
/// statement after the lock sees the latest commits).
///
/// `FOR NO KEY UPDATE`, the lock an `UPDATE` of non-key columns takes, rather than `FOR
/// UPDATE`: it excludes every other writer of the build just the same, but not the
/// `FOR KEY SHARE` locks with which inserts elsewhere check their foreign keys.
pub const LOCK_BUILD: &str =
    concat!("SELECT ", build_columns!("catalog", "metadata"), " FROM builds WHERE id = $1 FOR NO KEY UPDATE");

/// The server's clock (whole microseconds, as `timestamptz` keeps them): what leases
/// and recorded times are judged by, whatever the workers' clocks say.
pub(crate) const SERVER_CLOCK: &str = "SELECT clock_timestamp()";

/// Compare-and-swap of a build row after a transition: changes (and returns) exactly one
/// row, or none when another writer got there first.
///
/// `$1` id, `$2` the version read (the swap's precondition), then the new values:
/// `$3` state, `$4` status, `$5` needs_intervention, `$6` attempt, `$7`
/// attempt_started_at, `$8` started_at, `$9` ended_at, `$10` updated_at, `$11`
/// metadata, `$12` version, `$13` history_len, `$14` failure_count.
pub const UPDATE_BUILD_CAS: &str = "UPDATE builds SET state = $3, status = $4, needs_intervention = $5, \
     attempt = $6, attempt_started_at = $7, started_at = $8, ended_at = $9, updated_at = $10, \
     metadata = $11, version = $12, history_len = $13, failure_count = $14 \
     WHERE id = $1 AND version = $2 RETURNING version";

/// `$1`..`$14`: build_id, seq, at, kind, state, attempt, actor, started_at, duration_ms,
/// exit_code, message, log, from_state, forced.
pub const INSERT_EVENT: &str = concat!(
    "INSERT INTO events (",
    event_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);

/// `$1`..`$14`: build_id, number, state, attempt, at, failure_type, class, component,
/// message, details, exit_code, resolved, resolution, resolved_at.
pub const INSERT_FAILURE: &str = concat!(
    "INSERT INTO failures (",
    failure_columns!("details"),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);

// ── builds ─────────────────────────────────────────────────────────────────────────

/// `$1`..`$21`: the build columns, in order.
pub const INSERT_BUILD: &str = concat!(
    "INSERT INTO builds (",
    build_columns!("catalog", "metadata"),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
);
pub(crate) const SELECT_BUILD_BY_ID: &str =
    concat!("SELECT ", build_columns!("catalog", "metadata"), " FROM builds WHERE id = $1");
/// The start of every `list_builds` query; `tx.rs` appends fixed conditions.
pub(crate) const SELECT_BUILDS: &str =
    concat!("SELECT ", build_columns!("catalog", "metadata"), " FROM builds");
pub(crate) const BUILD_ID_BY_NUMBER: &str = "SELECT id FROM builds WHERE number = $1";
/// Serialises the creates of one day's sequence (`$1` the stem), in this schema only:
/// between this lock and commit, no other create allocates under the same stem, and
/// the next holder's read sees this one's build. Two-key form, whose first key
/// 1651732077 is `bsnm` in ASCII: the single-key advisory lock space stays free for
/// others.
pub(crate) const LOCK_NUMBER_STEM: &str =
    "SELECT pg_advisory_xact_lock(1651732077, hashtext(current_schema() || '/' || $1))";
/// Build numbers in `[$1, $2)`: a prefix range that uses the unique index and, unlike
/// LIKE, gives `_` and `%` no special meaning.
pub(crate) const NUMBERS_IN_RANGE: &str = "SELECT number FROM builds WHERE number >= $1 AND number < $2";
/// Builds whose id is in `[$1, $2]` (the uuids whose text starts with a prefix) or whose
/// number is in `[$3, $4)`.
pub(crate) const PREFIX_CANDIDATES: &str = "SELECT id, number FROM builds \
     WHERE (id BETWEEN $1 AND $2) OR (number >= $3 AND number < $4) ORDER BY number LIMIT 100";
/// Cascades to history, failures, artifacts and the lease record.
pub(crate) const DELETE_BUILD: &str = "DELETE FROM builds WHERE id = $1";

// ── history, failures, artifacts ────────────────────────────────────────────────────

pub(crate) const SELECT_EVENTS: &str =
    concat!("SELECT ", event_columns!(), " FROM events WHERE build_id = $1 ORDER BY seq");
/// The start of every `failures` query; `tx.rs` appends fixed conditions.
pub(crate) const SELECT_FAILURES: &str = concat!("SELECT ", failure_columns!("details"), " FROM failures");
/// `$1` build_id, `$2` number, `$3` resolution, `$4` resolved_at.
pub(crate) const RESOLVE_FAILURE: &str = "UPDATE failures SET resolved = true, resolution = $3, \
     resolved_at = $4 WHERE build_id = $1 AND number = $2";

/// Insert, or replace in place (keeping the row's position, hence the listing order) by
/// name. `$1` build_id, then the artifact columns.
pub(crate) const UPSERT_ARTIFACT: &str = concat!(
    "INSERT INTO artifacts (build_id, ",
    artifact_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (build_id, name) DO UPDATE SET kind = EXCLUDED.kind, uri = EXCLUDED.uri, \
     region = EXCLUDED.region, size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, \
     created_at = EXCLUDED.created_at"
);
pub(crate) const SELECT_ARTIFACTS: &str =
    concat!("SELECT ", artifact_columns!(), " FROM artifacts WHERE build_id = $1 ORDER BY position");

// ── leases ─────────────────────────────────────────────────────────────────────────

/// `$1` = build id. The build's lease record, released or not.
pub(crate) const SELECT_LEASE: &str =
    concat!("SELECT ", lease_columns!(), " FROM leases WHERE build_id = $1");
/// Grant, renewal or re-insert after an import: the one row of a build, replaced in
/// place. `$1`..`$9` in `lease_columns!` order.
pub(crate) const UPSERT_LEASE: &str = concat!(
    "INSERT INTO leases (",
    lease_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (build_id) DO UPDATE SET owner = EXCLUDED.owner, host = EXCLUDED.host, \
     pid = EXCLUDED.pid, token = EXCLUDED.token, acquired_at = EXCLUDED.acquired_at, \
     renewed_at = EXCLUDED.renewed_at, expires_at = EXCLUDED.expires_at, released = EXCLUDED.released"
);
/// Every held lease, with its build's number (no lease column is also a build column).
pub(crate) const SELECT_HELD_LEASES: &str = concat!(
    "SELECT ",
    lease_columns!(),
    ", number FROM leases JOIN builds ON id = build_id WHERE NOT released"
);

// ── catalog ────────────────────────────────────────────────────────────────────────

/// The statements of one catalog table.
#[derive(Debug)]
pub(crate) struct KindSql {
    pub(crate) insert: &'static str,
    pub(crate) list: &'static str,
    pub(crate) get: &'static str,
    /// Locks the item for removal: waits for creates whose foreign-key check holds it
    /// (`FOR KEY SHARE`), after which [`KindSql::builds_using`] is final.
    pub(crate) lock: &'static str,
    pub(crate) builds_using: &'static str,
    pub(crate) delete: &'static str,
}

macro_rules! kind_sql {
    ($table:literal, $columns:literal, $values:literal, $build_column:literal) => {
        KindSql {
            insert: concat!("INSERT INTO ", $table, " (", $columns, ") VALUES (", $values, ")"),
            list: concat!("SELECT ", $columns, " FROM ", $table, " ORDER BY name"),
            get: concat!("SELECT ", $columns, " FROM ", $table, " WHERE name = $1"),
            lock: concat!("SELECT 1 FROM ", $table, " WHERE name = $1 FOR UPDATE"),
            builds_using: concat!("SELECT count(*) FROM builds WHERE ", $build_column, " = $1"),
            delete: concat!("DELETE FROM ", $table, " WHERE name = $1"),
        }
    };
}

impl KindSql {
    pub(crate) fn of(kind: CatalogKind) -> &'static KindSql {
        const PLATFORMS: KindSql =
            kind_sql!("platforms", "name, display_name, provider, region", "$1, $2, $3, $4", "platform");
        const OS_VERSIONS: KindSql =
            kind_sql!("os_versions", "name, display_name, family, major, minor", "$1, $2, $3, $4, $5", "os");
        const IMAGE_TYPES: KindSql =
            kind_sql!("image_types", "name, display_name, description", "$1, $2, $3", "image_type");
        match kind {
            CatalogKind::Platform => &PLATFORMS,
            CatalogKind::Os => &OS_VERSIONS,
            CatalogKind::ImageType => &IMAGE_TYPES,
        }
    }
}

// ── migrations ─────────────────────────────────────────────────────────────────────

/// Whether the bookkeeping table exists in the schema the connection uses.
pub(crate) const MIGRATIONS_TABLE_EXISTS: &str = "SELECT to_regclass('schema_migrations') IS NOT NULL";
pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, \
     applied_at timestamptz NOT NULL DEFAULT clock_timestamp())";
pub(crate) const SELECT_MIGRATIONS: &str =
    "SELECT version, name, checksum FROM schema_migrations ORDER BY version";
pub(crate) const INSERT_MIGRATION: &str =
    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)";
/// Serialises migrations of one schema (`$1`, the schema the connection will use)
/// across every process migrating it at once; released at commit. First key
/// 1651731815 is `bsmg` in ASCII.
pub(crate) const LOCK_MIGRATIONS: &str = "SELECT pg_advisory_xact_lock(1651731815, hashtext($1))";
/// The schema unqualified names resolve to (the first of `search_path` that exists).
pub(crate) const CURRENT_SCHEMA: &str = "SELECT current_schema()";
