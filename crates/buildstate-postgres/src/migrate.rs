//! Versioned, append-only migrations, embedded in the binary.
//!
//! `schema_migrations` records each applied migration (version, name, SHA-256 of its
//! text, time). Connecting reads it once without any lock: when every embedded migration
//! is recorded with the embedded text — what nearly every connect sees — there is
//! nothing to do. Otherwise, in one transaction under an advisory lock per schema (so
//! that many workers starting at once migrate it once, the others waiting and then
//! finding it done), the schema is created if asked for, the records are read again,
//! and each missing migration runs with its record: a crash leaves the schema before
//! or after, never half-way. A recorded migration this binary does not know (a newer
//! buildstate wrote the database) or whose text changed after release is refused.

use buildstate_store::{StoreError, StoreResult};
use deadpool_postgres::{GenericClient, Object};

use crate::error::PgContext;
use crate::sql;

// One schema step (never edit or reorder a released one: add a new file), and the
// checksum `schema_migrations` records of it: shared with the other SQL backend.
pub(crate) use buildstate_store::sql_rows::{Migration, checksum};

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/0001_init.sql") },
    Migration {
        version: 2,
        name: "artifact milestones",
        sql: include_str!("../migrations/0002_artifact_milestones.sql"),
    },
    Migration { version: 3, name: "workers", sql: include_str!("../migrations/0003_workers.sql") },
    Migration {
        version: 4,
        name: "attempt stats",
        sql: include_str!("../migrations/0004_attempt_stats.sql"),
    },
    Migration { version: 5, name: "tokens", sql: include_str!("../migrations/0005_tokens.sql") },
    Migration { version: 6, name: "webhooks", sql: include_str!("../migrations/0006_webhooks.sql") },
    Migration {
        version: 7,
        name: "artifact cloud",
        sql: include_str!("../migrations/0007_artifact_cloud.sql"),
    },
];

/// The migration whose table starts with what existing histories contribute.
const ATTEMPT_STATS: u32 = 4;

/// The schema version this binary writes: the last migration's.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `(version, name, checksum)` of a recorded migration.
type Applied = (i32, String, String);

/// Brings the schema the connection uses (`schema`, or the first of the server's
/// `search_path`) to [`SCHEMA_VERSION`]; returns it. Any failure is `Unavailable`: the
/// store cannot be used as it is.
pub(crate) async fn migrate(client: &mut Object, schema: Option<&str>, location: &str) -> StoreResult<u32> {
    run(client, schema, location).await.map_err(|e| match e {
        StoreError::Backend { context, source } => {
            StoreError::Unavailable { location: location.to_owned(), reason: format!("{context}: {source}") }
        }
        other => other,
    })
}

async fn run(client: &mut Object, schema: Option<&str>, location: &str) -> StoreResult<u32> {
    if let Some(applied) = applied_if_any(&*client).await? {
        check_applied(&applied, location)?;
        if applied.len() == MIGRATIONS.len() {
            return Ok(SCHEMA_VERSION);
        }
    }
    let tx = client.transaction().await.ctx("begin the migration")?;
    let lock_key = match schema {
        Some(s) => s.to_owned(),
        None => current_schema(&tx, location).await?,
    };
    tx.execute(sql::LOCK_MIGRATIONS, &[&lock_key]).await.ctx("wait for other migrations")?;
    if let Some(schema) = schema {
        // The name was checked against `[a-z_][a-z0-9_]*` (`url::check_schema`): it
        // needs no quoting, and an identifier cannot be a bound parameter.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await.ctx("create the schema")?;
    }
    tx.batch_execute(sql::CREATE_MIGRATIONS_TABLE).await.ctx("create schema_migrations")?;
    // Again, under the lock: another process may have migrated while this one waited.
    let applied = applied(&tx).await?;
    check_applied(&applied, location)?;
    for m in
        MIGRATIONS.iter().filter(|m| !applied.iter().any(|(v, _, _)| i64::from(*v) == i64::from(m.version)))
    {
        tx.batch_execute(m.sql).await.ctx("apply a migration")?;
        if m.version == ATTEMPT_STATS {
            backfill_attempt_stats(&tx).await?;
        }
        let version = i32::try_from(m.version).map_err(|e| StoreError::backend("number a migration", e))?;
        tx.execute(sql::INSERT_MIGRATION, &[&version, &m.name, &checksum(m.sql)])
            .await
            .ctx("record a migration")?;
        tracing::info!(version = m.version, name = m.name, location, "applied postgres migration");
    }
    tx.commit().await.ctx("commit the migration")?;
    Ok(SCHEMA_VERSION)
}

/// Sums the attempts already recorded into `attempt_stats`, in the migration's
/// transaction: the table is never seen half-filled.
async fn backfill_attempt_stats(tx: &impl GenericClient) -> StoreResult<()> {
    use buildstate_store::report::{StatSource, from_sources};
    use buildstate_store::sql::text;
    let what = "read the attempts to sum";
    let bad = |e: String| StoreError::Backend { context: what, source: e.into() };
    let rows = tx.query(text::SELECT_STAT_SOURCES, &[]).await.ctx(what)?;
    let mut sources = Vec::with_capacity(rows.len());
    for r in &rows {
        let name = |i: usize| -> StoreResult<buildstate_core::Name> {
            let s: String = r.try_get(i).ctx(what)?;
            s.parse().map_err(|e: buildstate_core::NameError| bad(e.to_string()))
        };
        let kind: String = r.try_get(5).ctx(what)?;
        let state: i16 = r.try_get(6).ctx(what)?;
        let attempt: i64 = r.try_get(7).ctx(what)?;
        let duration: Option<i64> = r.try_get(9).ctx(what)?;
        sources.push(StatSource {
            platform: name(0)?,
            os: name(1)?,
            image_type: name(2)?,
            build: r.try_get::<_, uuid::Uuid>(3).ctx(what)?.to_string(),
            kind: kind.parse().map_err(|e: buildstate_core::ParseWordError| bad(e.to_string()))?,
            state: buildstate_core::StateCode::new(i64::from(state)).map_err(|e| bad(e.to_string()))?,
            attempt: u32::try_from(attempt).unwrap_or(0),
            at: r.try_get(8).ctx(what)?,
            duration_ms: duration.map(|d| d.max(0) as u64),
        });
    }
    let filled = from_sources(sources);
    for row in &filled.durations {
        let (state, bucket) = (i16::from(row.state.get()), i32::try_from(row.bucket).unwrap_or(i32::MAX));
        tx.execute(text::ADD_DURATION, &[&state, &bucket, &row.attempts, &row.total_ms])
            .await
            .ctx("sum the durations")?;
    }
    for (build, resumes, saved) in filled.savings {
        let id: uuid::Uuid = build.parse().map_err(|e: uuid::Error| bad(e.to_string()))?;
        let (resumes, saved) = (i64::from(resumes), i64::try_from(saved).unwrap_or(i64::MAX));
        tx.execute(text::ADD_RESUME_SAVINGS, &[&id, &resumes, &saved]).await.ctx("sum the savings")?;
    }
    for row in filled.stats {
        let (state, bucket) = (i16::from(row.state.get()), i32::try_from(row.bucket).unwrap_or(i32::MAX));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &row.platform.as_str(),
            &row.os.as_str(),
            &row.image_type.as_str(),
            &state,
            &row.kind.as_str(),
            &bucket,
            &row.attempts,
            &row.total_ms,
            &row.retries,
        ];
        tx.execute(text::ADD_ATTEMPT_STAT, &params).await.ctx("sum the attempts")?;
    }
    Ok(())
}

/// The recorded migrations, or `None` when the bookkeeping table does not exist yet.
async fn applied_if_any(client: &impl GenericClient) -> StoreResult<Option<Vec<Applied>>> {
    let row = client.query_one(sql::MIGRATIONS_TABLE_EXISTS, &[]).await.ctx("look for schema_migrations")?;
    if !row.try_get::<_, bool>(0).ctx("look for schema_migrations")? {
        return Ok(None);
    }
    applied(client).await.map(Some)
}

async fn applied(client: &impl GenericClient) -> StoreResult<Vec<Applied>> {
    let rows = client.query(sql::SELECT_MIGRATIONS, &[]).await.ctx("read schema_migrations")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .ctx("read schema_migrations")
}

/// The schema unqualified names resolve to; `Unavailable` when no schema of the
/// `search_path` exists.
async fn current_schema(client: &impl GenericClient, location: &str) -> StoreResult<String> {
    let row = client.query_one(sql::CURRENT_SCHEMA, &[]).await.ctx("read the current schema")?;
    let schema: Option<String> = row.try_get(0).ctx("read the current schema")?;
    schema.ok_or_else(|| StoreError::Unavailable {
        location: location.to_owned(),
        reason: "no schema of the search_path exists; create one, or connect with a schema".to_owned(),
    })
}

/// Every recorded migration must be one this binary embeds, with the same text (the
/// check both SQL backends share).
fn check_applied(applied: &[Applied], location: &str) -> StoreResult<()> {
    let embedded: Vec<(u32, String)> = MIGRATIONS.iter().map(|m| (m.version, checksum(m.sql))).collect();
    buildstate_store::sql_rows::check_applied(&embedded, applied, location)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::PostgresStore;
    use crate::testdb::{TestSchema, raw_client};

    /// Editing an applied migration breaks every database that ran it: add a new one
    /// instead, and add its line here.
    #[test]
    fn released_migrations_are_pinned() {
        let listed: Vec<(u32, &str, String)> =
            MIGRATIONS.iter().map(|m| (m.version, m.name, checksum(m.sql))).collect();
        assert_eq!(
            listed,
            vec![
                (1, "init", "38eb5aefa6afe27f6957218d0b35d07407728737fe81ad11eabacfd10f607c9d".to_owned()),
                (
                    2,
                    "artifact milestones",
                    "c68da9210853fbf025c9e6c2eb23933da10f02255508163030c81c3ffeb51e31".to_owned()
                ),
                (3, "workers", "cb9b8ec535a534c5ba9964d4f94e0f8ceead52a690010c7816ae0977ae83d8da".to_owned()),
                (
                    4,
                    "attempt stats",
                    "fdba3609c556a620d282d2ab1da5f98c0e3c52dec2a0588b5c2512aa59c45b95".to_owned()
                ),
                (5, "tokens", "2ee2b38f4f8c4d42d6a4cfacdfb945b9075df513da9fba6ec9c19b5179273f64".to_owned()),
                (
                    6,
                    "webhooks",
                    "d46ed42c910bd3edcf647cf625ec340fbf3246cb0b17a5a8643853eade9d7317".to_owned()
                ),
                (
                    7,
                    "artifact cloud",
                    "a248a9d905298327eb34a0a384c9d63d318be627150fb18c695a5f278ec880a3".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn versions_run_one_two_three() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "migration {}", m.name);
        }
        assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_every_migration_once_under_concurrent_connects() {
        let schema = TestSchema::new("mig");
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (url, name) = (schema.url.clone(), schema.name.clone());
            connects.spawn(async move { PostgresStore::connect_with_schema(&url, &name).await });
        }
        while let Some(joined) = connects.join_next().await {
            let store = joined.expect("connect task").expect("every concurrent connect succeeds");
            assert_eq!(store.schema_version(), SCHEMA_VERSION);
        }
        let raw = raw_client(&schema).await;
        let rows = recorded(&raw).await;
        let expected: Vec<Applied> = MIGRATIONS
            .iter()
            .map(|m| (i32::try_from(m.version).expect("small"), m.name.to_owned(), checksum(m.sql)))
            .collect();
        assert_eq!(rows, expected, "each migration applied and recorded once");
        let tables: i64 = raw
            .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = $1", &[&schema.name])
            .await
            .expect("count tables")
            .get(0);
        assert_eq!(
            tables, 16,
            "3 catalog tables, builds, events, failures, artifacts, leases, workers, attempt_stats, duration_histogram, resume_savings, tokens, webhooks, webhook_deliveries, schema_migrations"
        );
    }

    /// An up-to-date schema connects without waiting for the migration lock: hold the
    /// lock from another session and connect anyway.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_up_to_date_schema_takes_the_fast_path() {
        let schema = TestSchema::new("fast");
        PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("first connect migrates");
        let mut holder = raw_client(&schema).await;
        let tx = holder.transaction().await.expect("begin");
        tx.execute(sql::LOCK_MIGRATIONS, &[&schema.name]).await.expect("hold the migration lock");
        let again = tokio::time::timeout(
            Duration::from_secs(10),
            PostgresStore::connect_with_schema(&schema.url, &schema.name),
        )
        .await
        .expect("the fast path does not wait for the migration lock")
        .expect("reconnect");
        assert_eq!(again.schema_version(), SCHEMA_VERSION);
        tx.rollback().await.expect("release the lock");
    }

    async fn recorded(raw: &tokio_postgres::Client) -> Vec<Applied> {
        let rows = raw.query(sql::SELECT_MIGRATIONS, &[]).await.expect("read schema_migrations");
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
    }

    async fn connect_refused(schema: &TestSchema) -> String {
        match PostgresStore::connect_with_schema(&schema.url, &schema.name).await {
            Err(StoreError::Unavailable { reason, location }) => {
                assert!(!location.contains(":buildstate@"), "the location hides the password: {location}");
                reason
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_a_newer_schema() {
        let schema = TestSchema::new("newer");
        PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect");
        let version = i32::try_from(SCHEMA_VERSION + 1).expect("small");
        raw_client(&schema)
            .await
            .execute(sql::INSERT_MIGRATION, &[&version, &"future", &"00"])
            .await
            .expect("record a migration from the future");
        let reason = connect_refused(&schema).await;
        assert!(reason.contains("newer than this buildstate knows"), "{reason}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_a_changed_migration() {
        let schema = TestSchema::new("edited");
        PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect");
        raw_client(&schema)
            .await
            .execute("UPDATE schema_migrations SET checksum = $1 WHERE version = 1", &[&"edited"])
            .await
            .expect("tamper");
        let reason = connect_refused(&schema).await;
        assert!(reason.contains("migration 1 (init) was applied from a different text"), "{reason}");
    }

    /// A schema that exists but is empty (made ahead of time by a DBA) is migrated.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_schema_without_records_is_migrated_in_place() {
        let schema = TestSchema::new("fresh");
        let raw = raw_client(&schema).await;
        raw.batch_execute(&format!("CREATE SCHEMA {}", schema.name)).await.expect("an empty schema exists");
        let store = PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect");
        assert_eq!(store.schema_version(), SCHEMA_VERSION);
        assert_eq!(recorded(&raw).await.len(), MIGRATIONS.len());
    }

    /// A schema written before attempt statistics existed (version 3) gets them summed
    /// from its histories by the migration.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_3_schema_gets_its_attempt_statistics() {
        let schema = TestSchema::new("stats");
        let store = PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect");
        buildstate_store::conformance::seed_attempts(&store).await;
        drop(store);
        raw_client(&schema)
            .await
            .batch_execute(
                "DROP TABLE attempt_stats; DROP TABLE resume_savings; DROP TABLE duration_histogram; DROP INDEX builds_by_cell; DROP INDEX builds_by_failure_count; \
                 DROP INDEX builds_by_status_and_need; DROP INDEX failures_by_group; DROP INDEX builds_with_own_catalog; DROP INDEX failures_by_class; \
                 DROP TABLE tokens; DROP TABLE webhook_deliveries; DROP TABLE webhooks; ALTER TABLE artifacts DROP COLUMN cloud; DELETE FROM schema_migrations WHERE version >= 4;",
            )
            .await
            .expect("back to version 3");
        let store = PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("migrate");
        let rows: i64 = raw_client(&schema)
            .await
            .query_one("SELECT count(*) FROM attempt_stats", &[])
            .await
            .expect("count")
            .get(0);
        assert!(rows > 0, "the histories were summed");
        buildstate_store::conformance::assert_attempt_stats_agree(&store).await;
    }
}
