//! The engine's primitives ([`Tx`]) on any SQL connection: every statement is written
//! once, in `text.rs`, and a backend supplies only a [`SqlConn`] and its [`Dialect`].

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, CatalogItem, CatalogKind, EventKind, FailureRecord, HistoryEvent,
    Lease, Name, WorkerRecord,
};
use jiff::Timestamp;

use super::conn::{Dialect, Row, SqlConn, SqlWrite};
use super::row::{ValueRow, catalog_item};
use super::text::{self, KindSql};
use super::value::{self, SqlValue, to_i64};
use crate::report::{BuildCount, DurationRow, FailureGroup, Group, ReportFilter, Saving, StatRow};
use crate::sql_rows::ColumnReader;
use crate::{BuildFilter, FailureFilter, LeaseRecord, Mode, StoreResult, Tx, prefix_upper_bound};

mod report;
mod tokens;
mod webhooks;

/// One transaction of the engine on a SQL connection.
#[derive(Debug)]
pub struct SqlTx<C> {
    conn: C,
    dialect: &'static Dialect,
    mode: Mode,
    /// The lease record read with the row lock, for the build locked.
    lease: Option<(BuildId, Option<LeaseRecord>)>,
    /// The store's clock, read once per transaction.
    clock: Option<Timestamp>,
}

impl<C: SqlConn> SqlTx<C> {
    pub fn new(conn: C, dialect: &'static Dialect, mode: Mode) -> Self {
        SqlTx { conn, dialect, mode, lease: None, clock: None }
    }

    /// The connection, to end the transaction with.
    pub fn conn(&mut self) -> &mut C {
        &mut self.conn
    }

    async fn rows(&mut self, sql: &str, params: &[SqlValue]) -> StoreResult<Vec<Row>> {
        Ok(self.conn.read(&[(sql, params)]).await?.pop().unwrap_or_default())
    }

    async fn all<T>(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        decode: impl Fn(&[SqlValue]) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.rows(sql, params).await?.iter().map(|r| decode(r)).collect()
    }

    async fn first<T>(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        decode: impl Fn(&[SqlValue]) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        first_row(&self.rows(sql, params).await?, decode)
    }

    async fn write(
        &mut self,
        sql: &'static str,
        what: &'static str,
        params: Vec<SqlValue>,
    ) -> StoreResult<()> {
        self.conn.write(SqlWrite::new(sql, what, params)).await
    }
}

fn first_row<T>(rows: &[Row], decode: impl Fn(&[SqlValue]) -> StoreResult<T>) -> StoreResult<Option<T>> {
    rows.first().map(|r| decode(r)).transpose()
}

/// The shared decoders (`sql_rows`) as functions of a row of values.
mod decode {
    use super::{SqlValue, ValueRow};
    crate::row_decoders!([SqlValue], ValueRow);
}

/// A column read by itself, its error naming what was read.
fn column<T>(what: &'static str, value: Result<T, String>) -> StoreResult<T> {
    value.map_err(|e| crate::StoreError::Backend { context: what, source: e.into() })
}

fn clock(row: &[SqlValue]) -> StoreResult<Timestamp> {
    column("read the server's clock", ValueRow(row).time(0))
}

/// A query assembled from fixed condition texts and numbered placeholders; the values
/// are bound, never formatted in.
struct Query {
    sql: String,
    values: Vec<SqlValue>,
    conditions: usize,
}

impl Query {
    fn new(head: &str) -> Self {
        Query { sql: head.to_owned(), values: Vec::new(), conditions: 0 }
    }

    /// `AND <condition>`, where a `$` in it stands for `value` (none: no `$`).
    fn and(&mut self, condition: &str, value: Option<SqlValue>) -> &mut Self {
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

    /// `AND <condition>`, where its `$`s stand for `values`, one each, in order.
    fn and_each(&mut self, condition: &str, values: Vec<SqlValue>) -> &mut Self {
        self.sql.push_str(if self.conditions == 0 { " WHERE " } else { " AND " });
        self.conditions += 1;
        let mut values = values.into_iter();
        for (i, part) in condition.split('$').enumerate() {
            if i > 0 {
                if let Some(v) = values.next() {
                    self.values.push(v);
                }
                self.sql.push_str(&format!("${}", self.values.len()));
            }
            self.sql.push_str(part);
        }
        self
    }

    fn and_if<V: Into<SqlValue>>(&mut self, condition: &str, value: Option<V>) -> &mut Self {
        match value {
            Some(v) => self.and(condition, Some(v.into())),
            None => self,
        }
    }

    fn ordered(&mut self, order: &str, limit: Option<usize>) -> StoreResult<&mut Self> {
        self.sql.push_str(order);
        if let Some(limit) = limit {
            self.values.push(SqlValue::Int(to_i64("limit", limit as u64)?));
            self.sql.push_str(&format!(" LIMIT ${}", self.values.len()));
        }
        Ok(self)
    }
}

/// The ids whose canonical text (`0190a3c5-…`, lowercase) starts with `prefix`, as the
/// closed range `[lowest, highest]`: ids sort byte by byte as their text does, in both
/// a `uuid` column and a text one. `None` when no id can start with `prefix` (a
/// non-hex digit, a misplaced hyphen, too long, or empty).
pub fn id_prefix_range(prefix: &str) -> Option<(BuildId, BuildId)> {
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
    let low = format!("{prefix}{}", &LOWEST[prefix.len()..]).parse().ok()?;
    let high = format!("{prefix}{}", &HIGHEST[prefix.len()..]).parse().ok()?;
    Some((low, high))
}

#[async_trait]
impl<C: SqlConn> Tx for SqlTx<C> {
    /// The server's clock where the store is a server: lease expiry must not depend on
    /// which worker's clock is right. Read once per transaction.
    async fn now(&mut self) -> StoreResult<Timestamp> {
        if let Some(t) = self.clock {
            return Ok(t);
        }
        let t = match self.dialect.clock {
            Some(sql) => first_row(&self.rows(sql, &[]).await?, clock)?.unwrap_or_else(crate::now),
            None => crate::now(),
        };
        self.clock = Some(t);
        Ok(t)
    }

    async fn catalog(&mut self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.all(KindSql::of(kind).list, &[], |r| catalog_item(kind, &ValueRow(r))).await
    }

    async fn catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>> {
        self.first(KindSql::of(kind).get, &[name.as_str().into()], |r| catalog_item(kind, &ValueRow(r))).await
    }

    async fn insert_catalog_item(&mut self, item: &CatalogItem) -> StoreResult<()> {
        let sql = KindSql::of(item.kind()).insert;
        self.conn.write(SqlWrite::new(sql, "insert a catalog item", value::catalog_item(item)).racing()).await
    }

    async fn delete_catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        self.write(KindSql::of(kind).delete, "delete a catalog item", vec![name.as_str().into()]).await
    }

    /// With row locks, locks the item first: a create whose insert already holds it
    /// (the foreign-key check's lock) commits before the count, so the count includes
    /// its build, and one that comes later fails its foreign-key check and runs again,
    /// finding no item.
    async fn builds_using(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<u64> {
        let (sql, name) = (KindSql::of(kind), [SqlValue::from(name.as_str())]);
        let mut reads: Vec<(&str, &[SqlValue])> = vec![(sql.builds_using, &name)];
        if self.dialect.row_locks {
            reads.insert(0, (sql.lock, &name));
        }
        let answers = self.conn.read(&reads).await?;
        let count = first_row(answers.last().map_or(&[][..], Vec::as_slice), |r| {
            column("count builds", ValueRow(r).int(0))
        })?;
        Ok(count.unwrap_or(0).unsigned_abs())
    }

    /// In a write, with row locks, locks the row until commit: writers of one build
    /// queue here, and each reads what the previous one committed. The lease record
    /// (and the server's clock) are read in the same round trip, once the lock is held.
    async fn build(&mut self, id: BuildId) -> StoreResult<Option<Build>> {
        let key = [SqlValue::Id(id)];
        if self.mode == Mode::Read {
            return self.first(text::SELECT_BUILD_BY_ID, &key, decode::build).await;
        }
        let lock = if self.dialect.row_locks { text::LOCK_BUILD } else { text::SELECT_BUILD_BY_ID };
        let mut reads: Vec<(&str, &[SqlValue])> = vec![(lock, &key), (text::SELECT_LEASE, &key)];
        let clock_sql = self.dialect.clock.filter(|_| self.clock.is_none());
        if let Some(sql) = clock_sql {
            reads.push((sql, &[]));
        }
        let mut answers = self.conn.read(&reads).await?;
        if clock_sql.is_some()
            && let Some(t) = first_row(&answers.pop().unwrap_or_default(), clock)?
        {
            self.clock = Some(t);
        }
        let lease = first_row(&answers.pop().unwrap_or_default(), decode::lease)?;
        self.lease = Some((id, lease));
        first_row(&answers.pop().unwrap_or_default(), decode::build)
    }

    async fn build_id_by_number(&mut self, number: &str) -> StoreResult<Option<BuildId>> {
        self.first(text::BUILD_ID_BY_NUMBER, &[number.into()], |r| {
            column("read a build id", ValueRow(r).id(0))
        })
        .await
    }

    async fn prefix_candidates(
        &mut self,
        id_prefix: &str,
        number_prefix: &str,
    ) -> StoreResult<Vec<(BuildId, BuildNumber)>> {
        // A prefix no id (or number) can start with gets an empty range: NULL bounds
        // match no id, an empty upper bound no number.
        let (id_low, id_high) = id_prefix_range(id_prefix).unzip();
        let number_upper = prefix_upper_bound(number_prefix).unwrap_or_default();
        let params = [id_low.into(), id_high.into(), number_prefix.into(), number_upper.into()];
        self.all(text::PREFIX_CANDIDATES, &params, decode::id_and_number).await
    }

    async fn list_builds(&mut self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        let mut q = Query::new(text::SELECT_BUILDS);
        q.and_if("status = $", filter.status.map(|s| s.as_str()))
            .and_if("platform = $", filter.platform.as_ref().map(Name::as_str))
            .and_if("os = $", filter.os.as_ref().map(Name::as_str))
            .and_if("image_type = $", filter.image_type.as_ref().map(Name::as_str))
            .and_if("state = $", filter.state.map(|s| s.get()))
            .and_if("created_at >= $", filter.since)
            .and_if("needs_intervention = $", filter.needs_intervention);
        if let Some((at, id)) = filter.after {
            // (created_at, id) < cursor, spelled out so that both dialects range over
            // the creation-time index.
            q.and_each(
                "created_at <= $ AND (created_at < $ OR id < $)",
                vec![at.into(), at.into(), id.into()],
            );
        }
        q.ordered(" ORDER BY created_at DESC, id DESC", filter.limit)?;
        self.all(&q.sql, &q.values, decode::build).await
    }

    /// Where the dialect has one, takes the stem's lock first (held to commit), so
    /// concurrent creates of one triple on one day allocate one after another and each
    /// reads its predecessor's number. A number chosen by hand takes no such lock; if
    /// one lands on the allocated number in between, the insert races it and the create
    /// runs again.
    async fn numbers_under(&mut self, stem: &str) -> StoreResult<Vec<String>> {
        let range = [stem.into(), prefix_upper_bound(stem).unwrap_or_default().into()];
        let key = [stem.into()];
        let mut reads: Vec<(&str, &[SqlValue])> = vec![(text::NUMBERS_IN_RANGE, &range)];
        if let Some(lock) = self.dialect.lock_stem {
            reads.insert(0, (lock, &key));
        }
        let numbers = self.conn.read(&reads).await?.pop().unwrap_or_default();
        numbers.iter().map(|r| column("read a build number", ValueRow(r).text(0))).collect()
    }

    async fn insert_build(&mut self, build: &Build) -> StoreResult<()> {
        let write = SqlWrite::new(text::INSERT_BUILD, "insert build", value::build(build)?);
        self.conn.write(write.racing()).await
    }

    async fn swap_build(&mut self, build: &Build, expected_version: u64) -> StoreResult<bool> {
        let params = value::swap_build(build, expected_version)?;
        Ok(!self.rows(text::UPDATE_BUILD_CAS, &params).await?.is_empty())
    }

    async fn delete_build(&mut self, id: BuildId) -> StoreResult<()> {
        // Cascades to the lease record too.
        self.lease = None;
        self.write(text::DELETE_BUILD, "delete a build", vec![id.into()]).await
    }

    async fn history(&mut self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.all(text::SELECT_EVENTS, &[id.into()], decode::event).await
    }

    async fn append_events(&mut self, id: BuildId, events: &[HistoryEvent]) -> StoreResult<()> {
        for e in events {
            self.write(text::INSERT_EVENT, "insert event", value::event(id, e)?).await?;
        }
        Ok(())
    }

    async fn failures(&mut self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        let mut q = Query::new(text::SELECT_FAILURES);
        q.and_if("build_id = $", filter.build)
            .and_if("state = $", filter.state.map(|s| s.get()))
            .and_if("failure_type = $", filter.failure_type.as_ref().map(|t| t.as_str()));
        if filter.unresolved_only {
            q.and("NOT resolved", None);
        }
        q.ordered(" ORDER BY at DESC, number DESC, build_id DESC", filter.limit)?;
        self.all(&q.sql, &q.values, decode::failure).await
    }

    async fn insert_failures(&mut self, failures: &[FailureRecord]) -> StoreResult<()> {
        for f in failures {
            self.write(text::INSERT_FAILURE, "insert failure", value::failure(f)?).await?;
        }
        Ok(())
    }

    async fn update_failure(&mut self, f: &FailureRecord) -> StoreResult<()> {
        self.write(text::RESOLVE_FAILURE, "resolve a failure", value::resolve_failure(f)).await
    }

    async fn artifacts(&mut self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.all(self.dialect.select_artifacts, &[id.into()], |r| decode::artifact(&id, r)).await
    }

    async fn put_artifact(&mut self, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
        self.write(text::UPSERT_ARTIFACT, "upsert artifact", value::artifact(id, artifact)?).await
    }

    async fn lease(&mut self, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
        match &self.lease {
            Some((locked, record)) if *locked == id => Ok(record.clone()),
            _ => self.first(text::SELECT_LEASE, &[id.into()], decode::lease).await,
        }
    }

    async fn put_lease(&mut self, record: &LeaseRecord) -> StoreResult<()> {
        self.lease = None;
        self.write(text::UPSERT_LEASE, "write lease", value::lease(record)?).await
    }

    async fn held_leases(&mut self) -> StoreResult<Vec<(BuildNumber, Lease)>> {
        self.all(text::SELECT_HELD_LEASES, &[], decode::held_lease).await
    }

    async fn worker(&mut self, name: &str) -> StoreResult<Option<WorkerRecord>> {
        self.first(text::SELECT_WORKER, &[name.into()], decode::worker).await
    }

    async fn put_worker(&mut self, record: &WorkerRecord) -> StoreResult<()> {
        self.write(text::UPSERT_WORKER, "write worker", value::worker(record)?).await
    }

    async fn workers_seen_since(&mut self, since: Timestamp) -> StoreResult<Vec<WorkerRecord>> {
        self.all(text::SELECT_WORKERS_SINCE, &[since.into()], decode::worker).await
    }

    async fn forget_workers(&mut self, before: Timestamp) -> StoreResult<()> {
        self.write(text::DELETE_WORKERS_BEFORE, "forget workers", vec![before.into()]).await
    }

    async fn tokens(&mut self) -> StoreResult<Vec<buildstate_core::TokenRecord>> {
        self.sql_tokens().await
    }

    async fn token(
        &mut self,
        id: &buildstate_core::TokenId,
    ) -> StoreResult<Option<buildstate_core::TokenRecord>> {
        self.sql_token(id).await
    }

    async fn put_token(&mut self, record: &buildstate_core::TokenRecord) -> StoreResult<()> {
        self.sql_put_token(record).await
    }

    async fn webhooks(&mut self) -> StoreResult<Vec<buildstate_core::WebhookRecord>> {
        self.sql_webhooks().await
    }

    async fn put_webhook(&mut self, record: &buildstate_core::WebhookRecord) -> StoreResult<()> {
        self.sql_put_webhook(record).await
    }

    async fn delete_webhook(&mut self, id: &buildstate_core::WebhookId) -> StoreResult<()> {
        self.sql_delete_webhook(id).await
    }

    async fn insert_deliveries(&mut self, deliveries: &[buildstate_core::Delivery]) -> StoreResult<()> {
        self.sql_insert_deliveries(deliveries).await
    }

    async fn delivery(
        &mut self,
        webhook: &buildstate_core::WebhookId,
        event_id: &str,
    ) -> StoreResult<Option<buildstate_core::Delivery>> {
        self.sql_delivery(webhook, event_id).await
    }

    async fn deliveries(
        &mut self,
        webhook: Option<&buildstate_core::WebhookId>,
        limit: usize,
    ) -> StoreResult<Vec<buildstate_core::Delivery>> {
        self.sql_deliveries(webhook, limit).await
    }

    async fn due_deliveries(
        &mut self,
        at: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<buildstate_core::Delivery>> {
        self.sql_due_deliveries(at, limit).await
    }

    async fn put_delivery(&mut self, delivery: &buildstate_core::Delivery) -> StoreResult<()> {
        self.sql_put_delivery(delivery).await
    }

    async fn give_up_deliveries(&mut self, webhook: &buildstate_core::WebhookId) -> StoreResult<()> {
        self.sql_give_up_deliveries(webhook).await
    }

    async fn report_builds(&mut self, filter: &ReportFilter) -> StoreResult<Vec<Build>> {
        self.sql_report_builds(filter).await
    }

    async fn latest_builds(&mut self, filter: &ReportFilter) -> StoreResult<Vec<Build>> {
        self.sql_latest_builds(filter).await
    }

    async fn count_builds(&mut self, filter: &ReportFilter, by: Group) -> StoreResult<Vec<BuildCount>> {
        self.sql_count_builds(filter, by).await
    }

    async fn report_events(
        &mut self,
        filter: &ReportFilter,
        kinds: &[EventKind],
    ) -> StoreResult<Vec<(BuildId, HistoryEvent)>> {
        self.sql_report_events(filter, kinds).await
    }

    async fn report_failures(&mut self, filter: &ReportFilter) -> StoreResult<Vec<FailureRecord>> {
        self.sql_report_failures(filter).await
    }

    async fn attempt_stats(&mut self, filter: &ReportFilter) -> StoreResult<Vec<StatRow>> {
        self.sql_attempt_stats(filter).await
    }

    async fn attempt_totals(
        &mut self,
        filter: &ReportFilter,
        by_platform: bool,
    ) -> StoreResult<Vec<crate::report::StatTotal>> {
        self.sql_attempt_totals(filter, by_platform).await
    }

    async fn eta_percentiles(
        &mut self,
        cells: &[crate::report::CellKey],
    ) -> StoreResult<crate::report::EtaPercentiles> {
        self.sql_eta_percentiles(cells).await
    }

    async fn transient_messages(
        &mut self,
        filter: &ReportFilter,
    ) -> StoreResult<Vec<(buildstate_core::StateCode, String, u64)>> {
        self.sql_transient_messages(filter).await
    }

    async fn failure_groups(&mut self, filter: &ReportFilter) -> StoreResult<Vec<FailureGroup>> {
        self.sql_failure_groups(filter).await
    }

    async fn custom_catalogs(&mut self) -> StoreResult<Vec<buildstate_core::StateCatalog>> {
        self.sql_custom_catalogs().await
    }

    async fn delivery_times(&mut self, filter: &ReportFilter) -> StoreResult<Vec<(Name, u64)>> {
        self.sql_delivery_times(filter).await
    }

    fn keeps_report_stats(&self) -> bool {
        true
    }

    async fn duration_histogram(&mut self, filter: &ReportFilter) -> StoreResult<Vec<DurationRow>> {
        self.sql_duration_histogram(filter).await
    }

    async fn add_duration_histogram(&mut self, rows: &[DurationRow]) -> StoreResult<()> {
        self.sql_add_duration_histogram(rows).await
    }

    async fn resume_savings(&mut self, filter: &ReportFilter) -> StoreResult<Vec<Saving>> {
        self.sql_resume_savings(filter).await
    }

    async fn add_resume_savings(&mut self, id: BuildId, resumes: u32, saved_ms: u64) -> StoreResult<()> {
        self.sql_add_resume_savings(id, resumes, saved_ms).await
    }

    async fn add_attempt_stats(&mut self, rows: &[StatRow]) -> StoreResult<()> {
        self.sql_add_attempt_stats(rows).await
    }
}
