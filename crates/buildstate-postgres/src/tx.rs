//! The shared SQL adapter (`buildstate_store::sql`) on one PostgreSQL transaction, in
//! as few round trips as the engine's reads allow.
//!
//! Writes are queued, not sent: the engine never reads their results, so each goes out
//! with the next statement whose rows are read, or with `COMMIT`, and `BEGIN` goes out
//! with the first statement. The driver pipelines statements sent together, and the
//! server runs one connection's statements in the order sent, each (read committed)
//! seeing everything before it, so a read sent after a write sees it. A transition is
//! three round trips: `BEGIN` + the row lock + the lease record + the clock; the
//! compare-and-swap; the history and failure inserts + `COMMIT`.
//!
//! Values are bound at the width of each parameter's column (`smallint` state codes,
//! `integer` exit codes, `bigint` counters), which the driver insists on, and rows are
//! read back by their columns' types.

use std::error::Error;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use async_trait::async_trait;
use buildstate_core::BuildId;
use buildstate_store::sql::{Dialect, Row, SqlConn, SqlValue, SqlWrite};
use buildstate_store::{Mode, StoreError, StoreResult, select_artifacts};
use bytes::BytesMut;
use deadpool_postgres::Object;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::error::{PgContext, StaleConnection, from_pg, is_connection_lost, raced};

/// Row locks, the per-stem advisory lock and the server's clock.
pub(crate) static DIALECT: Dialect = Dialect {
    row_locks: true,
    lock_stem: Some(crate::sql::LOCK_NUMBER_STEM),
    clock: Some(crate::sql::SERVER_CLOCK),
    select_artifacts: select_artifacts!("position"),
    month_created: "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-01')",
    distinct_cells: "WITH RECURSIVE cell AS (\
        (SELECT platform, os, image_type FROM builds{w} ORDER BY 1, 2, 3 LIMIT 1) \
        UNION ALL SELECT n.* FROM cell CROSS JOIN LATERAL (SELECT platform, os, image_type FROM builds \
        WHERE (platform, os, image_type) > (cell.platform, cell.os, cell.image_type){and} \
        ORDER BY 1, 2, 3 LIMIT 1) n) SELECT platform, os, image_type FROM cell",
};

type Sent<'a> = Pin<Box<dyn Future<Output = StoreResult<Vec<tokio_postgres::Row>>> + Send + 'a>>;

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
    writes: Vec<SqlWrite>,
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

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx").field("mode", &self.mode).field("open", &self.open).finish_non_exhaustive()
    }
}

/// A value at the type of the parameter it is bound to.
#[derive(Debug)]
struct Bind<'v>(&'v SqlValue);

fn out_of_range(n: i64, ty: &Type) -> Box<dyn Error + Sync + Send> {
    format!("{n} does not fit a {ty} column").into()
}

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Int(n) => match *ty {
                Type::INT2 => i16::try_from(*n).map_err(|_| out_of_range(*n, ty))?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*n).map_err(|_| out_of_range(*n, ty))?.to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            SqlValue::Bool(b) => b.to_sql(ty, out),
            SqlValue::Text(s) => s.as_str().to_sql(ty, out),
            SqlValue::Time(t) => t.to_sql(ty, out),
            SqlValue::Id(id) if *ty == Type::UUID => id.as_uuid().to_sql(ty, out),
            SqlValue::Id(id) => id.to_string().to_sql(ty, out),
            SqlValue::Json(text) => {
                if *ty == Type::JSONB {
                    out.extend_from_slice(&[1]); // the jsonb binary format's version
                }
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// JSON as its text, from `json` or `jsonb`.
struct JsonText(String);

impl<'a> FromSql<'a> for JsonText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let text = match (*ty == Type::JSONB, raw.split_first()) {
            (true, Some((1, rest))) => rest,
            (true, _) => return Err("unknown jsonb format".into()),
            (false, _) => raw,
        };
        Ok(JsonText(std::str::from_utf8(text)?.to_owned()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

/// Column `i` of `row` as a value, by the column's type.
fn value(row: &tokio_postgres::Row, i: usize) -> Result<SqlValue, tokio_postgres::Error> {
    fn get<'a, T: FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
        f: impl Fn(T) -> SqlValue,
    ) -> Result<SqlValue, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<T>>(i)?.map_or(SqlValue::Null, f))
    }
    match *row.columns()[i].type_() {
        Type::INT2 => get(row, i, |n: i16| SqlValue::Int(n.into())),
        Type::INT4 => get(row, i, |n: i32| SqlValue::Int(n.into())),
        Type::INT8 => get(row, i, SqlValue::Int),
        Type::BOOL => get(row, i, SqlValue::Bool),
        Type::TIMESTAMPTZ => get(row, i, SqlValue::Time),
        Type::UUID => get(row, i, |u| SqlValue::Id(BuildId::from_uuid(u))),
        Type::JSON | Type::JSONB => get(row, i, |JsonText(t)| SqlValue::Json(t)),
        // What a lock function answers.
        Type::VOID => Ok(SqlValue::Null),
        _ => get(row, i, SqlValue::Text),
    }
}

fn values(row: &tokio_postgres::Row) -> StoreResult<Row> {
    (0..row.len()).map(|i| value(row, i)).collect::<Result<_, _>>().ctx("read a row")
}

impl PgTx {
    pub(crate) fn new(conn: Object, mode: Mode) -> Self {
        PgTx { conn: Some(conn), mode, open: false, writes: Vec::new() }
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

    /// Sends `BEGIN` (unless sent), the queued writes, `reads` and `end`, in one round
    /// trip; the rows of each read.
    async fn exchange(
        &mut self,
        reads: &[(&str, &[SqlValue])],
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
        reads: &[(&str, &[SqlValue])],
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
        let bound: Vec<Vec<Bind<'_>>> = writes
            .iter()
            .map(|w| w.params.as_slice())
            .chain(reads.iter().map(|(_, p)| *p))
            .map(|params| params.iter().map(Bind).collect())
            .collect();
        let params: Vec<Vec<&(dyn ToSql + Sync)>> =
            bound.iter().map(|b| b.iter().map(|v| v as &(dyn ToSql + Sync)).collect()).collect();
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
        for (i, (statement, params)) in prepared.iter().zip(&params).enumerate() {
            let write = writes.get(i);
            sent.push(Box::pin(async move {
                conn.query(statement, params).await.map_err(|e| match write {
                    Some(w) if w.races => raced(w.what, e),
                    Some(w) => from_pg(w.what, e),
                    None => from_pg("run a query", e),
                })
            }));
        }
        if let Some(end) = end {
            sent.push(simple(end, "end a transaction"));
        }
        self.open = true;
        let answers = pipelined(sent).await;
        if end.is_some() && matches!(answers.last(), Some(Ok(_))) {
            self.open = false;
        }
        let mut rows: Vec<Vec<tokio_postgres::Row>> = answers.into_iter().collect::<StoreResult<_>>()?;
        rows.truncate(skipped + reads.len());
        rows.split_off(skipped).iter().map(|rows| rows.iter().map(values).collect()).collect()
    }
}

/// Polls every future, in order, until all are done; their outputs in order. Each sends
/// its statement on its first poll, so they leave back to back, in this order.
async fn pipelined(mut sent: Vec<Sent<'_>>) -> Vec<StoreResult<Vec<tokio_postgres::Row>>> {
    let mut done: Vec<Option<StoreResult<Vec<tokio_postgres::Row>>>> = sent.iter().map(|_| None).collect();
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

#[async_trait]
impl SqlConn for PgTx {
    async fn read(&mut self, statements: &[(&str, &[SqlValue])]) -> StoreResult<Vec<Vec<Row>>> {
        self.exchange(statements, None).await
    }

    async fn write(&mut self, write: SqlWrite) -> StoreResult<()> {
        self.writes.push(write);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use buildstate_core::{
        CatalogItem, CatalogKind, ImageType, Name, NewBuild, OsVersion, Platform, StateCatalog,
    };
    use buildstate_store::{BuildFilter, Store, StoreError};

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
}
