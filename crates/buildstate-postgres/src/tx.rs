//! The engine's primitives (`buildstate_store::Tx`) on one PostgreSQL transaction, in
//! as few round trips as the engine's reads allow.
//!
//! Writes are queued, not sent: the engine never reads their results, so each goes out
//! with the next statement whose rows are read, or with `COMMIT`, and `BEGIN` goes out
//! with the first statement. The driver pipelines statements sent together, and the
//! server runs one connection's statements in the order sent, each (read committed)
//! seeing everything before it, so a read sent after a write sees it. A transition is
//! three round trips: `BEGIN` + the row lock + the lease record; the compare-and-swap;
//! the history and failure inserts + `COMMIT`.
//!
//! Prefix matches are range comparisons (`x >= prefix AND x < upper`) rather than LIKE:
//! they use the indexes, and `_` (a LIKE wildcard) in platform names (`aws_gov`) means
//! only itself. Numbers are `COLLATE "C"`, so the ranges are byte ranges on any server.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, CatalogItem, CatalogKind, FailureRecord, HistoryEvent, Lease, Name,
};
use buildstate_store::{
    BuildFilter, FailureFilter, LeaseRecord, Mode, StoreError, StoreResult, Tx, prefix_upper_bound,
};
use deadpool_postgres::Object;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{PgContext, StaleConnection, is_connection_lost, to_i64};
use crate::rows;
use crate::sql::{self, KindSql};
use crate::write::{self, Value, Write};

/// Bound parameters of one statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

type Sent<'a> = Pin<Box<dyn Future<Output = StoreResult<Vec<Row>>> + Send + 'a>>;

/// One transaction on a pooled connection, begun with its first statement.
pub(crate) struct PgTx {
    /// Always `Some` until dropped.
    conn: Option<Object>,
    mode: Mode,
    /// `BEGIN` went out and no `COMMIT` or `ROLLBACK` was answered: dropped like this
    /// (its unit of work cancelled, or the connection broken), the connection is closed,
    /// never handed out again with a transaction open.
    open: bool,
    /// Writes not sent yet, in order.
    writes: Vec<Write>,
    /// The lease record read right after the build's row was locked.
    lease: Option<(BuildId, Option<LeaseRecord>)>,
    /// The server's clock, read once per transaction (with the row lock when there is
    /// one, so it costs no round trip of its own).
    clock: Option<jiff::Timestamp>,
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open
            && let Some(conn) = self.conn.take()
        {
            drop(Object::take(conn));
        }
    }
}

impl PgTx {
    pub(crate) fn new(conn: Object, mode: Mode) -> Self {
        PgTx { conn: Some(conn), mode, open: false, writes: Vec::new(), lease: None, clock: None }
    }

    /// Commits (or rolls back) what the unit of work did.
    pub(crate) async fn end(&mut self, commit: bool) -> StoreResult<()> {
        if !commit {
            self.writes.clear();
        }
        if !self.open && self.writes.is_empty() {
            return Ok(());
        }
        self.exchange(&[], Some(if commit { "COMMIT" } else { "ROLLBACK" })).await.map(drop)
    }

    /// The rows of `sql`, sent after the queued writes.
    pub(crate) async fn rows(&mut self, sql: &str, params: Params<'_>) -> StoreResult<Vec<Row>> {
        Ok(self.exchange(&[(sql, params)], None).await?.pop().unwrap_or_default())
    }

    async fn all<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        decode: impl Fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.rows(sql, params).await?.iter().map(decode).collect()
    }

    async fn first<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        decode: impl Fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.rows(sql, params).await?.first().map(decode).transpose()
    }

    fn queue(&mut self, write: StoreResult<Write>) -> StoreResult<()> {
        self.writes.push(write?);
        Ok(())
    }

    /// Sends `BEGIN` (unless sent), the queued writes, `reads` and `end`, in one round
    /// trip; the rows of each read.
    async fn exchange(
        &mut self,
        reads: &[(&str, Params<'_>)],
        end: Option<&'static str>,
    ) -> StoreResult<Vec<Vec<Row>>> {
        self.send(reads, end).await.map_err(|e| {
            // Nothing commits without `COMMIT`: a connection lost before it was sent
            // leaves nothing behind, and the unit of work can run again on another.
            if end != Some("COMMIT") && is_connection_lost(&e) {
                StoreError::backend("run a transaction", StaleConnection(e.to_string()))
            } else {
                e
            }
        })
    }

    async fn send(
        &mut self,
        reads: &[(&str, Params<'_>)],
        end: Option<&'static str>,
    ) -> StoreResult<Vec<Vec<Row>>> {
        let conn = self.conn.as_ref().ok_or_else(|| {
            StoreError::backend("send a statement", StaleConnection("the connection was closed".into()))
        })?;
        let writes = std::mem::take(&mut self.writes);
        // Every statement is prepared (once per connection) before any is sent: one
        // prepared on the way would go out behind the statements after it.
        let mut prepared = Vec::with_capacity(writes.len() + reads.len());
        for sql in writes.iter().map(|w| w.sql).chain(reads.iter().map(|(sql, _)| *sql)) {
            prepared.push(conn.prepare_cached(sql).await.ctx("prepare a statement")?);
        }
        let bound: Vec<_> = writes.iter().map(Write::params).collect();
        let simple = |sql: &'static str, what: &'static str| -> Sent<'_> {
            Box::pin(async move { conn.batch_execute(sql).await.ctx(what).map(|()| Vec::new()) })
        };
        let mut sent: Vec<Sent<'_>> = Vec::new();
        if !self.open {
            sent.push(simple(
                match self.mode {
                    Mode::Write => "BEGIN",
                    Mode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                },
                "begin a transaction",
            ));
        }
        let skipped = sent.len() + writes.len();
        for ((write, params), statement) in writes.iter().zip(&bound).zip(&prepared) {
            sent.push(Box::pin(
                async move { conn.query(statement, params).await.map_err(|e| write.error(e)) },
            ));
        }
        for ((_, params), statement) in reads.iter().zip(&prepared[writes.len()..]) {
            sent.push(Box::pin(async move { conn.query(statement, params).await.ctx("run a query") }));
        }
        if let Some(end) = end {
            sent.push(simple(end, "end a transaction"));
        }
        self.open = true;
        let answers = pipelined(sent).await;
        if end.is_some() && matches!(answers.last(), Some(Ok(_))) {
            self.open = false;
        }
        let mut rows: Vec<Vec<Row>> = answers.into_iter().collect::<StoreResult<_>>()?;
        rows.truncate(skipped + reads.len());
        Ok(rows.split_off(skipped))
    }
}

/// Polls every future, in order, until all are done; their outputs in order. Each sends
/// its statement on its first poll, so they leave back to back, in this order.
async fn pipelined(mut sent: Vec<Sent<'_>>) -> Vec<StoreResult<Vec<Row>>> {
    let mut done: Vec<Option<StoreResult<Vec<Row>>>> = sent.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut waiting = false;
        for (future, out) in sent.iter_mut().zip(done.iter_mut()).filter(|(_, out)| out.is_none()) {
            match future.as_mut().poll(cx) {
                Poll::Ready(answer) => *out = Some(answer),
                Poll::Pending => waiting = true,
            }
        }
        if waiting { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// A query assembled from fixed condition texts and numbered placeholders; the values
/// are bound, never formatted in.
struct Query {
    sql: String,
    values: Vec<Value>,
    conditions: usize,
}

impl Query {
    fn new(head: &str) -> Self {
        Query { sql: head.to_owned(), values: Vec::new(), conditions: 0 }
    }

    /// `AND <condition>`; a `$` in it stands for `value`.
    fn and(&mut self, condition: &str, value: Option<Value>) -> &mut Self {
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

#[async_trait]
impl Tx for PgTx {
    async fn catalog(&mut self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.all(KindSql::of(kind).list, &[], |r| rows::catalog_item(kind, r)).await
    }

    async fn catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>> {
        self.first(KindSql::of(kind).get, &[&name.as_str()], |r| rows::catalog_item(kind, r)).await
    }

    async fn insert_catalog_item(&mut self, item: &CatalogItem) -> StoreResult<()> {
        self.queue(Ok(write::catalog_item(item)))
    }

    async fn delete_catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        self.queue(Ok(write::delete_catalog_item(kind, name)))
    }

    /// Locks the item first: a create whose insert already holds it (the foreign-key
    /// check's lock) commits before the count, so the count includes its build, and one
    /// that comes later fails its foreign-key check and runs again, finding no item.
    async fn builds_using(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<u64> {
        let (sql, name): (_, Params<'_>) = (KindSql::of(kind), &[&name.as_str()]);
        let answers = self.exchange(&[(sql.lock, name), (sql.builds_using, name)], None).await?;
        let count = answers.last().and_then(|rows| rows.first()).map(|r| r.try_get::<_, i64>(0));
        Ok(count.transpose().ctx("count builds")?.unwrap_or(0).unsigned_abs())
    }

    /// In a write, locks the row until commit (`sql::LOCK_BUILD`): writers of one build
    /// queue here, and each reads what the previous one committed. The lease record is
    /// read in the same round trip, by a statement that runs once the lock is held.
    /// The server's clock: lease expiry must not depend on which worker's clock is
    /// right. Read once per transaction.
    async fn now(&mut self) -> StoreResult<jiff::Timestamp> {
        if let Some(t) = self.clock {
            return Ok(t);
        }
        let rows = self.rows(sql::SERVER_CLOCK, &[]).await?;
        let t = rows.first().map(rows::clock).transpose()?.unwrap_or_else(buildstate_store::now);
        self.clock = Some(t);
        Ok(t)
    }

    async fn build(&mut self, id: BuildId) -> StoreResult<Option<Build>> {
        let key: Params<'_> = &[id.as_uuid()];
        if self.mode == Mode::Read {
            return self.first(sql::SELECT_BUILD_BY_ID, key, rows::build).await;
        }
        let mut answers = self
            .exchange(&[(sql::LOCK_BUILD, key), (sql::SELECT_LEASE, key), (sql::SERVER_CLOCK, &[])], None)
            .await?;
        if let Some(row) = answers.pop().unwrap_or_default().first() {
            self.clock.get_or_insert(rows::clock(row)?);
        }
        let lease = answers.pop().unwrap_or_default().first().map(rows::lease).transpose()?;
        self.lease = Some((id, lease));
        answers.pop().unwrap_or_default().first().map(rows::build).transpose()
    }

    async fn build_id_by_number(&mut self, number: &str) -> StoreResult<Option<BuildId>> {
        let id = |r: &Row| r.try_get(0).map(BuildId::from_uuid).ctx("read a build id");
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
        let upper = prefix_upper_bound(stem).unwrap_or_default();
        let reads: [(&str, Params<'_>); 2] =
            [(sql::LOCK_NUMBER_STEM, &[&stem]), (sql::NUMBERS_IN_RANGE, &[&stem, &upper])];
        let numbers = self.exchange(&reads, None).await?.pop().unwrap_or_default();
        numbers.iter().map(|r| r.try_get(0).ctx("read a build number")).collect()
    }

    async fn insert_build(&mut self, build: &Build) -> StoreResult<()> {
        self.queue(write::build(build))
    }

    async fn swap_build(&mut self, build: &Build, expected_version: u64) -> StoreResult<bool> {
        let swap = write::swap_build(build, expected_version)?;
        Ok(!self.rows(swap.sql, &swap.params()).await?.is_empty())
    }

    async fn delete_build(&mut self, id: BuildId) -> StoreResult<()> {
        // Cascades to the lease record too.
        self.lease = None;
        self.queue(Ok(write::delete_build(id)))
    }

    async fn history(&mut self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.all(sql::SELECT_EVENTS, &[id.as_uuid()], rows::event).await
    }

    async fn append_events(&mut self, id: BuildId, events: &[HistoryEvent]) -> StoreResult<()> {
        events.iter().try_for_each(|e| self.queue(write::event(id, e)))
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
        failures.iter().try_for_each(|f| self.queue(Ok(write::failure(f))))
    }

    async fn update_failure(&mut self, f: &FailureRecord) -> StoreResult<()> {
        self.queue(Ok(write::resolve_failure(f)))
    }

    async fn artifacts(&mut self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.all(sql::SELECT_ARTIFACTS, &[id.as_uuid()], |r| rows::artifact(&id, r)).await
    }

    async fn put_artifact(&mut self, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
        self.queue(write::artifact(id, artifact))
    }

    async fn lease(&mut self, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
        match &self.lease {
            Some((locked, record)) if *locked == id => Ok(record.clone()),
            _ => self.first(sql::SELECT_LEASE, &[id.as_uuid()], rows::lease).await,
        }
    }

    async fn put_lease(&mut self, record: &LeaseRecord) -> StoreResult<()> {
        self.lease = None;
        self.queue(write::lease(record))
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
