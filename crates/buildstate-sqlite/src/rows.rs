//! Rows to domain values: [`ColumnReader`] over rusqlite's rows (times are integer
//! microseconds, JSON is text), and the shared decoders of `buildstate_store::sql_rows`.

use buildstate_store::StoreResult;
use buildstate_store::sql_rows::ColumnReader;
use jiff::Timestamp;
use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};

use crate::error::SqlContext;

/// Runs `sql` and decodes every row.
pub(crate) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).ctx("prepare a query")?;
    let mut rows = stmt.query(params).ctx("run a query")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().ctx("read a row")? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Runs `sql` and decodes the first row, if any.
pub(crate) fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).ctx("prepare a query")?;
    let mut rows = stmt.query(params).ctx("run a query")?;
    match rows.next().ctx("read a row")? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// A row of a query, as the shared decoders read it.
struct SqliteRow<'r, 's>(&'r Row<'s>);

impl SqliteRow<'_, '_> {
    fn get<T: FromSql>(&self, i: usize) -> Result<T, String> {
        self.0.get(i).map_err(|e| e.to_string())
    }
}

impl ColumnReader for SqliteRow<'_, '_> {
    const CORRUPT: &'static str = "corrupt row in the sqlite store";

    fn text(&self, i: usize) -> Result<String, String> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        self.get(i)
    }

    fn int(&self, i: usize) -> Result<i64, String> {
        self.get(i)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        self.get(i)
    }

    fn bool(&self, i: usize) -> Result<bool, String> {
        self.get(i)
    }

    fn time(&self, i: usize) -> Result<Timestamp, String> {
        Timestamp::from_microsecond(self.get(i)?).map_err(|e| e.to_string())
    }

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, String> {
        let us: Option<i64> = self.get(i)?;
        us.map(Timestamp::from_microsecond).transpose().map_err(|e| e.to_string())
    }

    fn json(&self, i: usize) -> Result<Option<serde_json::Value>, String> {
        let text: Option<String> = self.get(i)?;
        text.map(|t| serde_json::from_str(&t)).transpose().map_err(|e| e.to_string())
    }
}

buildstate_store::row_decoders!(Row<'_>, SqliteRow);
