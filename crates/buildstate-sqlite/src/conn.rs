//! The shared SQL adapter (`buildstate_store::sql`) on a rusqlite connection: binding
//! values (times as integer microseconds, JSON and ids as text), reading rows, and the
//! dialect. Statements run at once: there is no round trip to save.

use std::borrow::Cow;

use async_trait::async_trait;
use buildstate_store::sql::{Dialect, Row, SqlConn, SqlValue, SqlWrite};
use buildstate_store::{StoreError, StoreResult, select_artifacts};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::SqlContext;

/// A write transaction holds the whole database (`BEGIN IMMEDIATE`): no row locks, no
/// stem locks, and this machine's clock.
pub(crate) static DIALECT: Dialect = Dialect {
    row_locks: false,
    lock_stem: None,
    clock: None,
    select_artifacts: select_artifacts!("rowid"),
    month_created: "strftime('%Y-%m-01', created_at / 1000000, 'unixepoch')",
    distinct_cells: "SELECT DISTINCT platform, os, image_type FROM builds{w}",
};

/// The connection of one transaction the handle began.
pub(crate) struct SqliteConn<'c>(pub(crate) &'c mut Connection);

/// The shared text's `$N` placeholders as SQLite's `?N`: SQLite reads `$N` as a named
/// parameter, numbered in order of first appearance rather than by `N`.
pub fn placeholders(sql: &str) -> Cow<'_, str> {
    if sql.contains('$') { Cow::Owned(sql.replace('$', "?")) } else { Cow::Borrowed(sql) }
}

/// A value as SQLite stores it.
pub(crate) struct Bind<'v>(pub(crate) &'v SqlValue);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            SqlValue::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            SqlValue::Text(s) | SqlValue::Json(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Time(t) => ToSqlOutput::Borrowed(ValueRef::Integer(t.as_microsecond())),
            SqlValue::Id(id) => ToSqlOutput::Owned(rusqlite::types::Value::Text(id.to_string())),
        })
    }
}

fn value(v: ValueRef<'_>) -> Result<SqlValue, String> {
    Ok(match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(n) => SqlValue::Int(n),
        ValueRef::Text(t) => SqlValue::Text(std::str::from_utf8(t).map_err(|e| e.to_string())?.to_owned()),
        ValueRef::Real(r) => return Err(format!("unexpected real number {r}")),
        ValueRef::Blob(_) => return Err("unexpected blob".to_owned()),
    })
}

impl SqliteConn<'_> {
    fn run(&self, sql: &str, params: &[SqlValue]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(&placeholders(sql)).ctx("prepare a statement")?;
        let columns = stmt.column_count();
        let mut rows =
            stmt.query(rusqlite::params_from_iter(params.iter().map(Bind))).ctx("run a statement")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().ctx("read a row")? {
            let values = (0..columns).map(|i| row.get_ref(i).map_err(|e| e.to_string()).and_then(value));
            let values: Result<Row, String> = values.collect();
            out.push(values.map_err(|e| StoreError::Backend {
                context: "corrupt row in the sqlite store",
                source: e.into(),
            })?);
        }
        Ok(out)
    }
}

#[async_trait]
impl SqlConn for SqliteConn<'_> {
    async fn read(&mut self, statements: &[(&str, &[SqlValue])]) -> StoreResult<Vec<Vec<Row>>> {
        statements.iter().map(|(sql, params)| self.run(sql, params)).collect()
    }

    /// At once: the unit of work's transaction holds the write lock, so an insert of a
    /// key the engine found free cannot race another writer.
    async fn write(&mut self, write: SqlWrite) -> StoreResult<()> {
        let mut stmt = self.0.prepare_cached(&placeholders(write.sql)).ctx("prepare a statement")?;
        stmt.execute(rusqlite::params_from_iter(write.params.iter().map(Bind))).ctx(write.what).map(drop)
    }
}
