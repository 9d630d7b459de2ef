//! The engine's primitives (`buildstate_store::Tx`) on one PostgreSQL transaction.
//!
//! Prefix matches are range comparisons (`x >= prefix AND x < upper`) rather than LIKE:
//! they use the indexes, and `_` (a LIKE wildcard) in platform names (`aws_gov`) means
//! only itself. Numbers are `COLLATE "C"`, so the ranges are byte ranges on any server.

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, CatalogItem, CatalogKind, FailureRecord, HistoryEvent, Lease, Name,
};
use buildstate_store::{BuildFilter, FailureFilter, LeaseRecord, Mode, StoreResult, Tx, prefix_upper_bound};
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{PgContext, to_i64};
use crate::insert;
use crate::rows::{self, Params, execute};
use crate::sql::{self, KindSql};

/// A transaction `transact.rs` began, and what it was begun for.
pub(crate) struct PgTx<'t> {
    tx: &'t Transaction<'t>,
    mode: Mode,
}

impl<'t> PgTx<'t> {
    pub(crate) fn new(tx: &'t Transaction<'t>, mode: Mode) -> Self {
        PgTx { tx, mode }
    }
}

/// A query assembled from fixed condition texts and numbered placeholders; the values
/// are bound, never formatted in.
struct Query {
    sql: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
    conditions: usize,
}

impl Query {
    fn new(head: &str) -> Self {
        Query { sql: head.to_owned(), values: Vec::new(), conditions: 0 }
    }

    /// `AND <condition>`, with `$N` for the value appended where the text has `$`.
    fn and(&mut self, condition: &str, value: Option<Box<dyn ToSql + Sync + Send>>) -> &mut Self {
        self.sql.push_str(if self.conditions == 0 { " WHERE " } else { " AND " });
        self.conditions += 1;
        match value {
            Some(v) => {
                self.values.push(v);
                self.sql.push_str(&condition.replace('$', &format!("${}", self.values.len())));
            }
            None => self.sql.push_str(condition),
        }
        self
    }

    fn and_if<V: ToSql + Sync + Send + 'static>(&mut self, condition: &str, value: Option<V>) -> &mut Self {
        match value {
            Some(v) => self.and(condition, Some(Box::new(v))),
            None => self,
        }
    }

    fn ordered(&mut self, order: &str, limit: Option<usize>) -> StoreResult<&mut Self> {
        self.sql.push_str(order);
        if let Some(limit) = limit {
            self.values.push(Box::new(to_i64("limit", limit as u64)?));
            self.sql.push_str(&format!(" LIMIT ${}", self.values.len()));
        }
        Ok(self)
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref() as _).collect()
    }
}

impl PgTx<'_> {
    async fn all<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        decode: impl Fn(&tokio_postgres::Row) -> StoreResult<T> + Send,
    ) -> StoreResult<Vec<T>> {
        rows::all(self.tx, sql, params, decode).await
    }

    async fn first<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        decode: impl Fn(&tokio_postgres::Row) -> StoreResult<T> + Send,
    ) -> StoreResult<Option<T>> {
        rows::first(self.tx, sql, params, decode).await
    }
}

#[async_trait]
impl Tx for PgTx<'_> {
    async fn catalog(&mut self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.all(KindSql::of(kind).list, &[], |r| rows::catalog_item(kind, r)).await
    }

    async fn catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>> {
        self.first(KindSql::of(kind).get, &[&name.as_str()], |r| rows::catalog_item(kind, r)).await
    }

    async fn insert_catalog_item(&mut self, item: &CatalogItem) -> StoreResult<()> {
        insert::catalog_item(self.tx, item).await
    }

    async fn delete_catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        execute(self.tx, KindSql::of(kind).delete, &[&name.as_str()], "delete a catalog item").await.map(drop)
    }

    /// Locks the item first: a create whose insert already holds it (the foreign-key
    /// check's lock) commits before the count, so the count includes its build, and one
    /// that comes later fails its foreign-key check and runs again, finding no item.
    async fn builds_using(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<u64> {
        let sql = KindSql::of(kind);
        execute(self.tx, sql.lock, &[&name.as_str()], "lock a catalog item").await?;
        let count = |r: &tokio_postgres::Row| r.try_get::<_, i64>(0).ctx("count builds");
        Ok(self.first(sql.builds_using, &[&name.as_str()], count).await?.unwrap_or(0).unsigned_abs())
    }

    /// In a write, locks the row until commit (`sql::LOCK_BUILD`): writers of one build
    /// queue here, and each reads what the previous one committed.
    async fn build(&mut self, id: BuildId) -> StoreResult<Option<Build>> {
        let sql = match self.mode {
            Mode::Write => sql::LOCK_BUILD,
            Mode::Read => sql::SELECT_BUILD_BY_ID,
        };
        self.first(sql, &[id.as_uuid()], rows::build).await
    }

    async fn build_id_by_number(&mut self, number: &str) -> StoreResult<Option<BuildId>> {
        let id = |r: &tokio_postgres::Row| r.try_get(0).map(BuildId::from_uuid).ctx("read a build id");
        self.first(sql::BUILD_ID_BY_NUMBER, &[&number], id).await
    }

    async fn prefix_candidates(
        &mut self,
        id_prefix: &str,
        number_prefix: &str,
    ) -> StoreResult<Vec<(BuildId, BuildNumber)>> {
        // A prefix that no id (or number) can start with gets an empty range: NULL
        // bounds match no id, an empty upper bound no number.
        let (id_low, id_high) = id_prefix_range(id_prefix).unzip();
        let number_upper = prefix_upper_bound(number_prefix).unwrap_or_default();
        let params: Params<'_> = &[&id_low, &id_high, &number_prefix, &number_upper];
        self.all(sql::PREFIX_CANDIDATES, params, rows::id_and_number).await
    }

    async fn list_builds(&mut self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        let mut q = Query::new(sql::SELECT_BUILDS);
        q.and_if("status = $", filter.status.map(|s| s.as_str()))
            .and_if("platform = $", filter.platform.as_ref().map(Name::to_string))
            .and_if("os = $", filter.os.as_ref().map(Name::to_string))
            .and_if("image_type = $", filter.image_type.as_ref().map(Name::to_string))
            .and_if("state = $", filter.state.map(|s| i16::from(s.get())))
            .and_if("created_at >= $", filter.since)
            .and_if("needs_intervention = $", filter.needs_intervention)
            .ordered(" ORDER BY created_at DESC, id DESC", filter.limit)?;
        self.all(&q.sql, &q.params(), rows::build).await
    }

    /// Takes the stem's advisory lock first (held to commit), so concurrent creates of
    /// one triple on one day allocate one after another and each reads its
    /// predecessor's number. A number chosen by hand takes no such lock; if one lands on
    /// the allocated number in between, the insert races it and the create runs again.
    async fn numbers_under(&mut self, stem: &str) -> StoreResult<Vec<String>> {
        execute(self.tx, sql::LOCK_NUMBER_STEM, &[&stem], "lock the day's build numbers").await?;
        let upper = prefix_upper_bound(stem).unwrap_or_default();
        let number = |r: &tokio_postgres::Row| r.try_get(0).ctx("read a build number");
        self.all(sql::NUMBERS_IN_RANGE, &[&stem, &upper], number).await
    }

    async fn insert_build(&mut self, build: &Build) -> StoreResult<()> {
        insert::build(self.tx, build).await
    }

    async fn swap_build(&mut self, build: &Build, expected_version: u64) -> StoreResult<bool> {
        insert::swap_build(self.tx, build, expected_version).await
    }

    async fn delete_build(&mut self, id: BuildId) -> StoreResult<()> {
        execute(self.tx, sql::DELETE_BUILD, &[id.as_uuid()], "delete a build").await.map(drop)
    }

    async fn history(&mut self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.all(sql::SELECT_EVENTS, &[id.as_uuid()], rows::event).await
    }

    async fn append_events(&mut self, id: BuildId, events: &[HistoryEvent]) -> StoreResult<()> {
        for e in events {
            insert::event(self.tx, &id, e).await?;
        }
        Ok(())
    }

    async fn failures(&mut self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        let mut q = Query::new(sql::SELECT_FAILURES);
        q.and_if("build_id = $", filter.build.map(|id| *id.as_uuid()))
            .and_if("state = $", filter.state.map(|s| i16::from(s.get())))
            .and_if("failure_type = $", filter.failure_type.as_ref().map(|t| t.as_str().to_owned()));
        if filter.unresolved_only {
            q.and("NOT resolved", None);
        }
        q.ordered(" ORDER BY at DESC, number DESC, build_id DESC", filter.limit)?;
        self.all(&q.sql, &q.params(), rows::failure).await
    }

    async fn insert_failures(&mut self, failures: &[FailureRecord]) -> StoreResult<()> {
        for f in failures {
            insert::failure(self.tx, f).await?;
        }
        Ok(())
    }

    async fn update_failure(&mut self, f: &FailureRecord) -> StoreResult<()> {
        let params: Params<'_> = &[f.build_id.as_uuid(), &i64::from(f.number), &f.resolution, &f.resolved_at];
        execute(self.tx, sql::RESOLVE_FAILURE, params, "resolve a failure").await.map(drop)
    }

    async fn artifacts(&mut self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.all(sql::SELECT_ARTIFACTS, &[id.as_uuid()], |r| rows::artifact(&id, r)).await
    }

    async fn put_artifact(&mut self, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
        insert::artifact(self.tx, &id, artifact).await
    }

    async fn lease(&mut self, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
        self.first(sql::SELECT_LEASE, &[id.as_uuid()], rows::lease).await
    }

    async fn put_lease(&mut self, record: &LeaseRecord) -> StoreResult<()> {
        insert::lease(self.tx, record).await
    }

    async fn held_leases(&mut self) -> StoreResult<Vec<(BuildNumber, Lease)>> {
        self.all(sql::SELECT_HELD_LEASES, &[], rows::held_lease).await
    }
}

/// The ids whose canonical text (`0190a3c5-…`, lowercase) starts with `prefix`, as the
/// closed range `[lowest, highest]`: uuids sort byte by byte, as their hex text does.
/// `None` when no id can start with `prefix` (a non-hex digit, a misplaced hyphen, too
/// long, or empty).
fn id_prefix_range(prefix: &str) -> Option<(Uuid, Uuid)> {
    const LOWEST: &str = "00000000-0000-0000-0000-000000000000";
    const HIGHEST: &str = "ffffffff-ffff-ffff-ffff-ffffffffffff";
    let prefix = prefix.to_ascii_lowercase();
    if prefix.is_empty() || prefix.len() > LOWEST.len() {
        return None;
    }
    let fits = prefix.bytes().zip(LOWEST.bytes()).all(|(c, shape)| match shape {
        b'-' => c == b'-',
        _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
    });
    if !fits {
        return None;
    }
    // `prefix` is ASCII from here on, so it ends on a character boundary of either shape.
    let low = Uuid::parse_str(&format!("{prefix}{}", &LOWEST[prefix.len()..])).ok()?;
    let high = Uuid::parse_str(&format!("{prefix}{}", &HIGHEST[prefix.len()..])).ok()?;
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use buildstate_core::{ImageType, NewBuild, OsVersion, Platform, StateCatalog};
    use buildstate_store::{Store, StoreError};

    use super::*;
    use crate::PostgresStore;
    use crate::testdb::{TestSchema, raw_client};

    fn name(n: &str) -> Name {
        Name::new(n).expect("valid name")
    }

    async fn store_with_catalog(schema: &TestSchema) -> PostgresStore {
        let store = PostgresStore::connect_with_schema(&schema.url, &schema.name).await.expect("connect");
        let items = [
            CatalogItem::Platform(Platform {
                name: name("aws"),
                display_name: "AWS".into(),
                provider: "aws".into(),
                region: None,
            }),
            CatalogItem::Os(OsVersion {
                name: name("rhel-9.6"),
                display_name: "RHEL".into(),
                family: "rhel".into(),
                major: 9,
                minor: Some(6),
            }),
        ];
        for item in items {
            store.add_catalog_item(&item).await.expect("add");
        }
        store
    }

    /// Runs `sql` in a transaction of another connection, starts `call` (which blocks on
    /// that transaction's row locks), then commits: `call` raced a writer that committed
    /// first, and must answer as if it had come second.
    async fn race<T: Send + 'static>(
        schema: &TestSchema,
        sql: &str,
        call: impl Future<Output = T> + Send + 'static,
    ) -> T {
        let raw = raw_client(schema).await;
        raw.batch_execute(&format!("BEGIN; {sql}")).await.expect("the other writer");
        let call = tokio::spawn(call);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!call.is_finished(), "the call waits for the other writer");
        raw.batch_execute("COMMIT").await.expect("commit");
        call.await.expect("call")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_add_that_races_the_same_add_is_already_exists() {
        let schema = TestSchema::new("raceadd");
        let store = store_with_catalog(&schema).await;
        let item = CatalogItem::ImageType(ImageType {
            name: name("base"),
            display_name: "Base".into(),
            description: String::new(),
        });
        let other = "INSERT INTO image_types (name, display_name) VALUES ('base', 'Theirs')";
        let s = store.clone();
        match race(&schema, other, async move { s.add_catalog_item(&item).await }).await {
            Err(StoreError::AlreadyExists { what, key }) => {
                assert_eq!((what, key.as_str()), ("image-type", "base"))
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_create_that_races_the_removal_of_its_item_is_not_found() {
        let schema = TestSchema::new("racerm");
        let store = store_with_catalog(&schema).await;
        let base = CatalogItem::ImageType(ImageType {
            name: name("base"),
            display_name: "Base".into(),
            description: String::new(),
        });
        store.add_catalog_item(&base).await.expect("add");
        let new = NewBuild {
            platform: name("aws"),
            os: name("rhel-9.6"),
            image_type: name("base"),
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: "test".into(),
            ci_url: None,
            metadata: Default::default(),
        };
        let s = store.clone();
        let created = race(&schema, "DELETE FROM image_types WHERE name = 'base'", async move {
            s.create_build(&new).await
        });
        match created.await {
            Err(StoreError::CatalogItemNotFound { kind: CatalogKind::ImageType, name, .. }) => {
                assert_eq!(name, "base");
            }
            other => panic!("expected CatalogItemNotFound, got {other:?}"),
        }
        assert!(store.list_builds(&BuildFilter::default()).await.expect("list").is_empty());
    }

    #[test]
    fn id_ranges_cover_exactly_the_ids_with_the_prefix() {
        let id = Uuid::parse_str("0190a3c5-7e4b-7c3d-8a1b-123456789abc").expect("valid uuid");
        let text = id.hyphenated().to_string();
        for len in 1..=text.len() {
            let (low, high) = id_prefix_range(&text[..len]).unwrap_or_else(|| panic!("prefix {len}"));
            assert!(low <= id && id <= high, "{}", &text[..len]);
        }
        let (low, high) = id_prefix_range("0190A3").expect("uppercase is accepted");
        assert_eq!(low.hyphenated().to_string(), "0190a300-0000-0000-0000-000000000000");
        assert_eq!(high.hyphenated().to_string(), "0190a3ff-ffff-ffff-ffff-ffffffffffff");
        let (low, high) = id_prefix_range("0190a3c5-").expect("a hyphen where ids have one");
        assert_eq!((low.as_u128() >> 96, high.as_u128() >> 96), (0x0190a3c5, 0x0190a3c5));
        let other = Uuid::parse_str("0190a3c6-0000-7000-8000-000000000000").expect("valid uuid");
        let (low, high) = id_prefix_range("0190a3c5").expect("range");
        assert!(!(low <= other && other <= high), "an id with another prefix is outside");
    }

    #[test]
    fn references_no_id_can_start_with_have_no_range() {
        for r in
            ["", "g", "0190a3c5x", "0190-", "%", "_", "*", "é", &"0".repeat(37), "'; DROP TABLE builds; --"]
        {
            assert_eq!(id_prefix_range(r), None, "{r}");
        }
    }
}
