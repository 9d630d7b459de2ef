//! Versioned, append-only migrations, embedded in the binary.
//!
//! `PRAGMA user_version` holds the schema version: equal to [`SCHEMA_VERSION`] means
//! nothing to do, which is what nearly every open sees (one read of the file header).
//! Otherwise, under the write lock, each missing migration runs in one transaction with
//! its record in `schema_migrations` (version, name, SHA-256 of its text, time), so a
//! crash leaves the schema either before or after, never half-way. Recorded checksums
//! are compared with the embedded text whenever migrations run: a migration edited
//! after release is refused, as is a database written by a newer buildstate.

use buildstate_store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::SqlContext;
use crate::sql;

// One schema step (never edit or reorder a released one: add a new file), and the
// checksum `schema_migrations` records of it: shared with the other SQL backend.
pub(crate) use buildstate_store::sql_rows::{Migration, checksum};

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, name: "leases", sql: include_str!("../migrations/0002_leases.sql") },
    Migration { version: 3, name: "json columns", sql: include_str!("../migrations/0003_json_columns.sql") },
    Migration {
        version: 4,
        name: "artifact milestones",
        sql: include_str!("../migrations/0004_artifact_milestones.sql"),
    },
    Migration { version: 5, name: "workers", sql: include_str!("../migrations/0005_workers.sql") },
    Migration {
        version: 6,
        name: "attempt stats",
        sql: include_str!("../migrations/0006_attempt_stats.sql"),
    },
    Migration { version: 7, name: "tokens", sql: include_str!("../migrations/0007_tokens.sql") },
    Migration { version: 8, name: "webhooks", sql: include_str!("../migrations/0008_webhooks.sql") },
    Migration {
        version: 9,
        name: "artifact cloud",
        sql: include_str!("../migrations/0009_artifact_cloud.sql"),
    },
];

/// The migration whose table starts with what existing histories contribute.
const ATTEMPT_STATS: u32 = 6;

/// The schema version this binary writes: the last migration's.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database at `conn` to [`SCHEMA_VERSION`]; returns it.
pub(crate) fn migrate(conn: &mut Connection, location: &str) -> StoreResult<u32> {
    let found = user_version(conn)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    refuse_newer(found, location)?;

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).ctx("begin migration")?;
    // Another process may have migrated while this one waited for the lock.
    let found = user_version(&tx)?;
    if found == SCHEMA_VERSION {
        return Ok(found);
    }
    refuse_newer(found, location)?;
    tx.execute(sql::CREATE_MIGRATIONS_TABLE, []).ctx("create schema_migrations")?;
    let applied = applied(&tx)?;
    let known: Vec<_> = MIGRATIONS.iter().map(|m| (m.version, checksum(m.sql))).collect();
    buildstate_store::sql_rows::check_applied(&known, &applied, location)?;

    let now = buildstate_store::now().as_microsecond();
    for m in MIGRATIONS.iter().filter(|m| !applied.iter().any(|(v, _, _)| *v == m.version)) {
        tx.execute_batch(m.sql).ctx("apply a migration")?;
        if m.version == ATTEMPT_STATS {
            backfill_attempt_stats(&tx)?;
        }
        tx.execute(sql::INSERT_MIGRATION, rusqlite::params![m.version, m.name, checksum(m.sql), now])
            .ctx("record a migration")?;
        tracing::info!(version = m.version, name = m.name, location, "applied sqlite migration");
    }
    // A pragma cannot take a bound parameter; rusqlite renders the integer itself.
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).ctx("set user_version")?;
    tx.commit().ctx("commit migration")?;
    Ok(SCHEMA_VERSION)
}

/// Sums the attempts already recorded into `attempt_stats`, in the migration's
/// transaction: the table is never seen half-filled.
fn backfill_attempt_stats(conn: &Connection) -> StoreResult<()> {
    use buildstate_store::report::{StatSource, from_sources};
    use buildstate_store::sql::{text, value};
    let mut stmt = conn.prepare(text::SELECT_STAT_SOURCES).ctx("read the attempts to sum")?;
    let sources = stmt
        .query_map([], |r| {
            let word = |i: usize| -> rusqlite::Result<String> { r.get(i) };
            let bad = |i: usize, e: String| {
                rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
            };
            let name =
                |i: usize| word(i)?.parse().map_err(|e: buildstate_core::NameError| bad(i, e.to_string()));
            let kind =
                word(5)?.parse().map_err(|e: buildstate_core::ParseWordError| bad(5, e.to_string()))?;
            let state: i64 = r.get(6)?;
            let at: i64 = r.get(8)?;
            Ok(StatSource {
                platform: name(0)?,
                os: name(1)?,
                image_type: name(2)?,
                build: word(3)?,
                kind,
                state: buildstate_core::StateCode::new(state).map_err(|e| bad(6, e.to_string()))?,
                attempt: r.get(7)?,
                at: jiff::Timestamp::from_microsecond(at).map_err(|e| bad(8, e.to_string()))?,
                duration_ms: r.get::<_, Option<i64>>(9)?.map(|d| d.max(0) as u64),
            })
        })
        .ctx("read the attempts to sum")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .ctx("read the attempts to sum")?;
    let mut add = conn.prepare(&crate::conn::placeholders(text::ADD_ATTEMPT_STAT)).ctx("sum the attempts")?;
    let filled = from_sources(sources);
    let mut add_duration =
        conn.prepare(&crate::conn::placeholders(text::ADD_DURATION)).ctx("sum the durations")?;
    for row in &filled.durations {
        let params = value::duration_row(row);
        add_duration
            .execute(rusqlite::params_from_iter(params.iter().map(crate::conn::Bind)))
            .ctx("sum the durations")?;
    }
    for row in filled.stats {
        let params = value::attempt_stat(&row);
        add.execute(rusqlite::params_from_iter(params.iter().map(crate::conn::Bind)))
            .ctx("sum the attempts")?;
    }
    let mut save =
        conn.prepare(&crate::conn::placeholders(text::ADD_RESUME_SAVINGS)).ctx("sum the savings")?;
    for (build, resumes, saved) in filled.savings {
        save.execute(rusqlite::params![build, resumes, i64::try_from(saved).unwrap_or(i64::MAX)])
            .ctx("sum the savings")?;
    }
    Ok(())
}

fn user_version(conn: &Connection) -> StoreResult<u32> {
    let v: i64 = conn.query_row(sql::USER_VERSION, [], |r| r.get(0)).ctx("read user_version")?;
    // A negative or huge user_version is not ours: treat it as "newer than known".
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

fn refuse_newer(found: u32, location: &str) -> StoreResult<()> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::Unavailable {
            location: location.to_owned(),
            reason: format!(
                "its schema version {found} is newer than this buildstate knows ({SCHEMA_VERSION}); upgrade buildstate"
            ),
        });
    }
    Ok(())
}

fn applied(conn: &Connection) -> StoreResult<Vec<(u32, String, String)>> {
    let mut stmt = conn.prepare(sql::SELECT_MIGRATIONS).ctx("read schema_migrations")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).ctx("read schema_migrations")?;
    rows.collect::<rusqlite::Result<Vec<_>>>().ctx("read schema_migrations")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    /// Released migrations, numbered 1, 2, 3, … with the checksum of their text. Editing
    /// an applied migration breaks every database that ran it: add a new one instead,
    /// and add its line here.
    const PINNED: &[(u32, &str, &str)] = &[
        (1, "init", "451580e0e95a4c04f191917106b988afe0aeec777ae157714f5647858a1f443d"),
        (2, "leases", "3b136c49fc668d4ba323c67e9cfd7a3d81fcef72193cc4bf1b32a41e45fe4e50"),
        (3, "json columns", "e5d7957da897665ec042b8256f07157e40ac50bb43c885d815dc3c5038ab7c92"),
        (4, "artifact milestones", "2a469a363b991fd8624d3418acd569931a3f1d7ca31920cdbbc27089f91a5e8a"),
        (5, "workers", "1858d9ea722114869ceb87ce8e76f51af60f7385449621cc0c7d02c9a4461dd5"),
        (6, "attempt stats", "afe3da2d499d5453354d0fdc06cb5bf40b783945e84d2e465909ff0e73a7da63"),
        (7, "tokens", "934166dae8ea1d032b1a2df4df5fc84a2570a265681a777c75fa006103771945"),
        (8, "webhooks", "40e75614d8c6b2b925a3f621900132f0b415ab29f5c2e1d22877577cd062d556"),
        (9, "artifact cloud", "c4099020e83ad33740d5770a7061f43852443306027a6c2f068dffc70e61709a"),
    ];

    #[test]
    fn embedded_migrations_are_the_pinned_ones_in_order() {
        assert_eq!(MIGRATIONS.len(), PINNED.len(), "a migration was added or removed: pin it");
        for (i, (m, &(version, name, sum))) in MIGRATIONS.iter().zip(PINNED).enumerate() {
            assert_eq!((m.version, m.name, checksum(m.sql).as_str()), (version, name, sum));
            assert_eq!(m.version as usize, i + 1, "migration {}", m.name);
        }
        assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
    }

    fn raw(path: &std::path::Path) -> Connection {
        Connection::open(path).expect("raw connection")
    }

    #[test]
    fn records_every_migration_and_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).expect("open");
        let c = raw(&path);
        assert_eq!(user_version(&c).expect("user_version"), SCHEMA_VERSION);
        let rows = applied(&c).expect("applied");
        assert_eq!(rows.len(), MIGRATIONS.len());
        assert_eq!(rows[0], (1, "init".to_owned(), checksum(MIGRATIONS[0].sql)));
    }

    #[test]
    fn an_up_to_date_database_takes_the_fast_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).expect("open");
        // Without the bookkeeping table, only the fast path (user_version) can succeed.
        raw(&path).execute("DROP TABLE schema_migrations", []).expect("drop");
        let again = SqliteStore::open(&path).expect("reopen via the fast path");
        assert_eq!(again.schema_version(), SCHEMA_VERSION);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).expect("open");
        raw(&path).pragma_update(None, "user_version", SCHEMA_VERSION + 1).expect("bump");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable { reason, .. }) => {
                assert!(reason.contains("newer than this buildstate knows"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn refuses_a_recorded_migration_it_does_not_know() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).expect("open");
        let c = raw(&path);
        c.execute(sql::INSERT_MIGRATION, rusqlite::params![SCHEMA_VERSION + 1, "future", "00", 0])
            .expect("insert");
        c.pragma_update(None, "user_version", 0).expect("reset");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable { reason, .. }) => {
                assert!(reason.contains("newer"), "{reason}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn refuses_a_changed_migration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).expect("open");
        let c = raw(&path);
        c.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1", []).expect("tamper");
        // Below the latest version, so that the runner (not the fast path) looks.
        c.pragma_update(None, "user_version", 0).expect("reset");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable { reason, .. }) => {
                assert!(reason.contains("migration 1 (init) was applied from a different text"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    /// A database written before leases existed (schema 1) upgrades in place on open and
    /// keeps its data.
    #[test]
    fn a_schema_1_database_is_upgraded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let c = raw(&path);
        c.execute(sql::CREATE_MIGRATIONS_TABLE, []).expect("bookkeeping table");
        c.execute_batch(MIGRATIONS[0].sql).expect("0001");
        c.execute(sql::INSERT_MIGRATION, rusqlite::params![1, "init", checksum(MIGRATIONS[0].sql), 0])
            .expect("record 0001");
        c.pragma_update(None, "user_version", 1).expect("schema 1");
        c.execute("INSERT INTO image_types (name, display_name) VALUES ('base', 'Base')", []).expect("data");
        drop(c);

        let store = SqliteStore::open(&path).expect("open upgrades");
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        let c = raw(&path);
        assert_eq!(applied(&c).expect("applied").len(), MIGRATIONS.len());
        let leases: i64 = c.query_row("SELECT count(*) FROM leases", [], |r| r.get(0)).expect("leases table");
        let kept: i64 = c.query_row("SELECT count(*) FROM image_types", [], |r| r.get(0)).expect("data");
        assert_eq!((leases, kept), (0, 1));
    }

    /// Artifacts recorded before milestones were kept read back with none, current, and
    /// the worker registry starts empty.
    #[test]
    fn a_schema_2_database_keeps_its_artifacts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let c = raw(&path);
        c.execute(sql::CREATE_MIGRATIONS_TABLE, []).expect("bookkeeping table");
        for m in &MIGRATIONS[..2] {
            c.execute_batch(m.sql).expect("an old migration");
            c.execute(sql::INSERT_MIGRATION, rusqlite::params![m.version, m.name, checksum(m.sql), 0])
                .expect("record it");
        }
        c.pragma_update(None, "user_version", 2).expect("schema 2");
        let id = "0190a3c5-7e4b-7c3d-8a1b-123456789abc";
        c.execute_batch(&format!(
            "INSERT INTO platforms (name, display_name, provider) VALUES ('aws', 'AWS', 'aws');
             INSERT INTO os_versions (name, display_name, family, major) VALUES ('rhel-9.6', 'RHEL', 'rhel', 9);
             INSERT INTO image_types (name, display_name) VALUES ('base', 'Base');
             INSERT INTO builds (id, number, platform, os, image_type, state, status, needs_intervention,
                 attempt, created_at, updated_at, created_by, version, history_len, failure_count)
                 VALUES ('{id}', 'rhel-9.6-base-aws-20260101-001', 'aws', 'rhel-9.6', 'base', 0, 'pending',
                 0, 0, 0, 0, 'test', 1, 1, 0);
             INSERT INTO artifacts (build_id, name, kind, uri, created_at)
                 VALUES ('{id}', 'ami', 'image', 'ami-1', 0);"
        ))
        .expect("schema 2 data");
        drop(c);

        let store = SqliteStore::open(&path).expect("open upgrades");
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (artifacts, workers) = runtime.block_on(async {
            use buildstate_store::Store;
            let artifacts = store.artifacts(id.parse().expect("id")).await.expect("artifacts");
            let workers = store.workers(std::time::Duration::from_secs(3600)).await.expect("workers");
            (artifacts, workers.workers)
        });
        assert_eq!(artifacts.len(), 1);
        assert_eq!((artifacts[0].milestone, artifacts[0].invalidated_at), (None, None));
        assert!(workers.is_empty());
    }

    #[test]
    fn a_missing_user_version_is_repaired_without_reapplying() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).expect("open");
        raw(&path).pragma_update(None, "user_version", 0).expect("reset");
        // Re-running 0001 would fail ("table platforms already exists").
        let again = SqliteStore::open(&path).expect("reopen");
        assert_eq!(again.schema_version(), SCHEMA_VERSION);
        assert_eq!(user_version(&raw(&path)).expect("user_version"), SCHEMA_VERSION);
    }

    /// A store written before attempt statistics existed (schema 5) gets them summed
    /// from its histories by the migration: the reports that read them agree with those
    /// computed from the histories.
    #[tokio::test(flavor = "current_thread")]
    async fn a_schema_5_database_gets_its_attempt_statistics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        buildstate_store::conformance::seed_attempts(&SqliteStore::open(&path).expect("open")).await;
        raw(&path)
            .execute_batch(
                "DROP TABLE attempt_stats; DROP TABLE resume_savings; DROP TABLE duration_histogram; DROP INDEX builds_by_cell; DROP INDEX builds_by_failure_count; \
                 DROP INDEX builds_by_status_and_need; DROP INDEX failures_by_group; DROP INDEX builds_with_own_catalog; DROP INDEX failures_by_class; \
                 DROP TABLE tokens; DROP TABLE webhook_deliveries; DROP TABLE webhooks; ALTER TABLE artifacts DROP COLUMN cloud; DELETE FROM schema_migrations WHERE version >= 6; PRAGMA user_version = 5;",
            )
            .expect("back to schema 5");
        let store = SqliteStore::open(&path).expect("migrate to the current schema");
        let rows: i64 =
            raw(&path).query_row("SELECT count(*) FROM attempt_stats", [], |r| r.get(0)).expect("count");
        assert!(rows > 0, "the histories were summed");
        buildstate_store::conformance::assert_attempt_stats_agree(&store).await;
    }
}
