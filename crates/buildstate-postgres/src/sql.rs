//! The SQL only this backend runs: its dialect's statements (the server's clock, the
//! per-stem lock) and those of migrations. The store's statements are shared with
//! SQLite (`buildstate_store::sql::text`).
//!
//! Locking rule: every write that changes a build's rows — the build, its history,
//! failures, artifacts or lease — first reads the build in a write transaction, which
//! locks its row (`text::LOCK_BUILD`), so the writes of one build are serialised and a
//! lease check can never race the write it guards.

/// The server's clock (whole microseconds, as `timestamptz` keeps them): what leases
/// and recorded times are judged by, whatever the workers' clocks say.
pub(crate) const SERVER_CLOCK: &str = "SELECT clock_timestamp()";

/// Serialises the creates of one day's sequence (`$1` the stem), in this schema only:
/// between this lock and commit, no other create allocates under the same stem, and
/// the next holder's read sees this one's build. Two-key form, whose first key
/// 1651732077 is `bsnm` in ASCII: the single-key advisory lock space stays free for
/// others.
pub(crate) const LOCK_NUMBER_STEM: &str =
    "SELECT pg_advisory_xact_lock(1651732077, hashtext(current_schema() || '/' || $1))";

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
