//! The SQL text both SQL backends run, written once.
//!
//! PostgreSQL's `$N` placeholders; the SQLite adapter reads them as `?N`. Every value
//! is bound as a parameter: nothing is ever formatted into SQL text, so quotes, SQL
//! keywords, `%`, `_` and NUL bytes in names and messages are just data. Prefix
//! matches are ranges (`x >= prefix AND x < upper`) rather than LIKE: they use the
//! indexes, and `_` (a LIKE wildcard) in platform names (`aws_gov`) means only itself.
//!
//! The hot transition path (`Store::apply`) is [`LOCK_BUILD`] (or, where the store has
//! no row locks, [`SELECT_BUILD_BY_ID`]) and [`SELECT_LEASE`], then
//! [`UPDATE_BUILD_CAS`], then [`INSERT_EVENT`] per history event and
//! [`INSERT_FAILURE`] per failure record. They are public so that the benchmark runs
//! exactly the same statements on a bare connection as its baseline.

use buildstate_core::CatalogKind;

use crate::{artifact_columns, build_columns, event_columns, failure_columns, lease_columns, worker_columns};

// ── the hot transition path ─────────────────────────────────────────────────────────

/// `$1` = build id.
pub const SELECT_BUILD_BY_ID: &str =
    concat!("SELECT ", build_columns!("catalog", "metadata"), " FROM builds WHERE id = $1");

/// `$1` = build id, in a write of a store with row locks (PostgreSQL): locks the row
/// until commit, so that writers of one build queue here and each reads what the
/// previous one committed.
///
/// `FOR NO KEY UPDATE`, the lock an `UPDATE` of non-key columns takes, rather than `FOR
/// UPDATE`: it excludes every other writer of the build just the same, but not the
/// `FOR KEY SHARE` locks with which inserts elsewhere check their foreign keys.
pub const LOCK_BUILD: &str =
    concat!("SELECT ", build_columns!("catalog", "metadata"), " FROM builds WHERE id = $1 FOR NO KEY UPDATE");

/// `$1` = build id. The build's lease record, released or not.
pub const SELECT_LEASE: &str = concat!("SELECT ", lease_columns!(), " FROM leases WHERE build_id = $1");

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

/// `$1`..`$14` in `event_columns!` order.
pub const INSERT_EVENT: &str = concat!(
    "INSERT INTO events (",
    event_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);

/// `$1`..`$14` in `failure_columns!` order.
pub const INSERT_FAILURE: &str = concat!(
    "INSERT INTO failures (",
    failure_columns!("details"),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);

// ── builds ─────────────────────────────────────────────────────────────────────────

/// `$1`..`$21` in `build_columns!` order.
pub const INSERT_BUILD: &str = concat!(
    "INSERT INTO builds (",
    build_columns!("catalog", "metadata"),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
);
/// The start of every `list_builds` query; conditions are appended.
pub const SELECT_BUILDS: &str = concat!("SELECT ", build_columns!("catalog", "metadata"), " FROM builds");
pub const BUILD_ID_BY_NUMBER: &str = "SELECT id FROM builds WHERE number = $1";
/// Build numbers in `[$1, $2)`: a prefix range on the unique index.
pub const NUMBERS_IN_RANGE: &str = "SELECT number FROM builds WHERE number >= $1 AND number < $2";
/// Builds whose id is in `[$1, $2]` (the ids whose text starts with a prefix) or whose
/// number is in `[$3, $4)`.
pub const PREFIX_CANDIDATES: &str = "SELECT id, number FROM builds \
     WHERE (id BETWEEN $1 AND $2) OR (number >= $3 AND number < $4) ORDER BY number LIMIT 100";
/// Cascades to history, failures, artifacts and the lease record (foreign keys).
pub const DELETE_BUILD: &str = "DELETE FROM builds WHERE id = $1";

// ── history, failures, artifacts ────────────────────────────────────────────────────

/// The start of the report query of events; conditions are appended.
pub const SELECT_ALL_EVENTS: &str = concat!("SELECT ", event_columns!(), " FROM events");
/// A build's `pipeline` metadata value is `$`: JSON text in SQLite and `jsonb` in
/// PostgreSQL both read a key with `->>`.
pub const PIPELINE_IS: &str = "metadata ->> 'pipeline' = $";
pub const SELECT_EVENTS: &str =
    concat!("SELECT ", event_columns!(), " FROM events WHERE build_id = $1 ORDER BY seq");
/// The start of every `failures` query; conditions are appended.
pub const SELECT_FAILURES: &str = concat!("SELECT ", failure_columns!("details"), " FROM failures");
/// `$1` build_id, `$2` number, `$3` resolution, `$4` resolved_at.
pub const RESOLVE_FAILURE: &str = "UPDATE failures SET resolved = true, resolution = $3, \
     resolved_at = $4 WHERE build_id = $1 AND number = $2";

/// Insert, or replace in place (keeping the row, hence the listing order) by name.
/// `$1` build_id, then the artifact columns.
pub const UPSERT_ARTIFACT: &str = concat!(
    "INSERT INTO artifacts (build_id, ",
    artifact_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (build_id, name) DO UPDATE SET kind = excluded.kind, uri = excluded.uri, \
     region = excluded.region, size_bytes = excluded.size_bytes, sha256 = excluded.sha256, \
     created_at = excluded.created_at, milestone = excluded.milestone, \
     invalidated_at = excluded.invalidated_at, cloud = excluded.cloud"
);
/// `$1` build_id: a build's artifacts in the order they were first recorded, which each
/// dialect keeps in its own way (SQLite's `rowid`, a PostgreSQL identity column).
#[macro_export]
macro_rules! select_artifacts {
    ($order:literal) => {
        concat!(
            "SELECT ",
            $crate::artifact_columns!(),
            " FROM artifacts WHERE build_id = $1 ORDER BY ",
            $order
        )
    };
}

// ── leases ─────────────────────────────────────────────────────────────────────────

/// Grant, renewal or re-insert after an import: the one row of a build, replaced in
/// place. `$1`..`$9` in `lease_columns!` order.
pub const UPSERT_LEASE: &str = concat!(
    "INSERT INTO leases (",
    lease_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (build_id) DO UPDATE SET owner = excluded.owner, host = excluded.host, \
     pid = excluded.pid, token = excluded.token, acquired_at = excluded.acquired_at, \
     renewed_at = excluded.renewed_at, expires_at = excluded.expires_at, released = excluded.released"
);
/// Every held lease, with its build's number (no lease column is also a build column).
pub const SELECT_HELD_LEASES: &str = concat!(
    "SELECT ",
    lease_columns!(),
    ", number FROM leases JOIN builds ON id = build_id WHERE NOT released"
);

// ── reports ─────────────────────────────────────────────────────────────────────────

/// Failure records by milestone and type: count, distinct builds, latest time. The
/// build filter is appended as ` AND build_id IN (…)`, then [`FAILURE_GROUPS_END`].
pub const FAILURE_GROUPS: &str = "SELECT state, failure_type, count(*), count(DISTINCT build_id), max(at) \
     FROM failures WHERE true";
pub const FAILURE_GROUPS_END: &str = " GROUP BY state, failure_type";
/// The latest record of a group (`$1` state, `$2` type, `$3` its latest time): the
/// larger build id, then number, on a tie.
pub const LATEST_OF_FAILURE_GROUP: &str = concat!(
    "SELECT ",
    failure_columns!("details"),
    " FROM failures WHERE state = $1 AND failure_type = $2 AND at = $3"
);
pub const LATEST_OF_FAILURE_GROUP_END: &str = " ORDER BY build_id DESC, number DESC LIMIT 1";
/// Transient failure messages counted per milestone and message; the build filter is
/// appended as ` AND build_id IN (…)`, then [`TRANSIENT_MESSAGES_END`].
pub const TRANSIENT_MESSAGES: &str =
    "SELECT state, message, count(*) FROM failures WHERE class = 'transient'";
pub const TRANSIENT_MESSAGES_END: &str = " GROUP BY state, message";
/// The catalogs builds have of their own (NULL is the default catalog).
/// As text: PostgreSQL keeps them as `json`, which has no equality for `DISTINCT`.
pub const CUSTOM_CATALOGS: &str =
    "SELECT DISTINCT CAST(catalog AS TEXT) FROM builds WHERE catalog IS NOT NULL";
/// Delivered builds' platform and first start and delivery times; conditions appended.
pub const DELIVERY_TIMES: &str =
    "SELECT platform, started_at, ended_at FROM builds WHERE status = 'completed'";

// ── attempt statistics (reports) ────────────────────────────────────────────────────

/// Adds a delta to one statistics row (`$1`..`$9`: platform, os, image_type, state,
/// kind, bucket, attempts, total_ms, retries).
pub const ADD_ATTEMPT_STAT: &str = "INSERT INTO attempt_stats \
     (platform, os, image_type, state, kind, bucket, attempts, total_ms, retries) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (platform, os, image_type, state, kind, bucket) DO UPDATE SET \
     attempts = attempt_stats.attempts + excluded.attempts, \
     total_ms = attempt_stats.total_ms + excluded.total_ms, \
     retries = attempt_stats.retries + excluded.retries";
/// Statistics summed over buckets and cells, per platform (`{p}` is `platform, ` or
/// nothing), milestone and kind; conditions go in `{w}`.
/// (PostgreSQL sums `bigint` as `numeric`: cast back.)
pub const ATTEMPT_TOTALS: &str = "SELECT {p}state, kind, CAST(sum(attempts) AS BIGINT), \
     CAST(sum(total_ms) AS BIGINT), CAST(sum(retries) AS BIGINT) \
     FROM attempt_stats WHERE attempts <> 0{w} GROUP BY {p}state, kind";
/// The start of the statistics query; conditions on platform, os and image_type are
/// appended.
pub const SELECT_ATTEMPT_STATS: &str = "SELECT platform, os, image_type, state, kind, bucket, attempts, \
     total_ms, retries FROM attempt_stats WHERE attempts <> 0";
/// What existing histories contribute, for the migration that creates the table: every
/// attempt with its build's platform, OS and image type, build by build, in order.
pub const SELECT_STAT_SOURCES: &str = "SELECT b.platform, b.os, b.image_type, e.build_id, e.seq, e.kind, \
     e.state, e.attempt, e.at, e.duration_ms FROM events e JOIN builds b ON b.id = e.build_id \
     WHERE e.kind IN ('started', 'completed', 'failed', 'rewound') ORDER BY e.build_id, e.seq";
/// Adds a delta to one row of the duration histogram (`$1` state, `$2` bucket, `$3`
/// attempts, `$4` total_ms).
pub const ADD_DURATION: &str = "INSERT INTO duration_histogram (state, bucket, attempts, total_ms) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (state, bucket) DO UPDATE SET \
     attempts = duration_histogram.attempts + excluded.attempts, \
     total_ms = duration_histogram.total_ms + excluded.total_ms";
pub const SELECT_DURATIONS: &str =
    "SELECT state, bucket, attempts, total_ms FROM duration_histogram WHERE attempts <> 0";
/// Completed attempts over all builds per milestone and coarse bucket (`{c}`, the fine
/// buckets per coarse one): what the histogram sums to, the ETAs' fallback.
pub const ETA_ALL: &str = "SELECT state, bucket / {c}, CAST(sum(attempts) AS BIGINT) FROM duration_histogram \
     WHERE attempts > 0 GROUP BY state, bucket / {c}";
/// Completed attempts of some cells per milestone and coarse bucket: the cells'
/// `($1, $2, $3), …` go in `{cells}`, read by the table's key.
pub const ETA_CELLS: &str = "SELECT platform, os, image_type, state, bucket, attempts FROM attempt_stats \
     WHERE kind = 'completed' AND attempts > 0 AND (platform, os, image_type) IN (VALUES {cells})";
/// Adds resumes and their savings to a build's row (`$1` build id, `$2` resumes, `$3`
/// saved ms), which also keeps the build's number, platform, OS and image type, so that
/// the report reads this table alone.
pub const ADD_RESUME_SAVINGS: &str = "INSERT INTO resume_savings \
     (build_id, number, platform, os, image_type, resumes, saved_ms) \
     SELECT id, number, platform, os, image_type, $2, $3 FROM builds WHERE id = $1 \
     ON CONFLICT (build_id) DO UPDATE SET resumes = resume_savings.resumes + excluded.resumes, \
     saved_ms = resume_savings.saved_ms + excluded.saved_ms";
/// Resumed builds with what they saved; a build filter is appended as
/// ` AND build_id IN (…)`.
pub const SELECT_RESUME_SAVINGS: &str = "SELECT number, platform, os, image_type, resumes, saved_ms \
     FROM resume_savings WHERE resumes > 0";

// ── the worker registry ─────────────────────────────────────────────────────────────

/// `$1` = worker name.
pub const SELECT_WORKER: &str = concat!("SELECT ", worker_columns!(), " FROM workers WHERE name = $1");
/// A worker's row, written whole: `$1`..`$8` in `worker_columns!` order.
pub const UPSERT_WORKER: &str = concat!(
    "INSERT INTO workers (",
    worker_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
     started_at = excluded.started_at, last_seen = excluded.last_seen, \
     heartbeat_ms = excluded.heartbeat_ms, build_id = excluded.build_id, exited_at = excluded.exited_at"
);
/// Workers last seen at `$1` or later.
pub const SELECT_WORKERS_SINCE: &str =
    concat!("SELECT ", worker_columns!(), " FROM workers WHERE last_seen >= $1");
/// Workers last seen before `$1`.
pub const DELETE_WORKERS_BEFORE: &str = "DELETE FROM workers WHERE last_seen < $1";

// ── catalog ────────────────────────────────────────────────────────────────────────

/// The statements of one catalog table.
#[derive(Debug)]
pub struct KindSql {
    pub insert: &'static str,
    pub list: &'static str,
    pub get: &'static str,
    /// Locks the item for removal, in a store with row locks: waits for creates whose
    /// foreign-key check holds it (`FOR KEY SHARE`), after which
    /// [`KindSql::builds_using`] is final.
    pub lock: &'static str,
    pub builds_using: &'static str,
    pub delete: &'static str,
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
    pub fn of(kind: CatalogKind) -> &'static KindSql {
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
