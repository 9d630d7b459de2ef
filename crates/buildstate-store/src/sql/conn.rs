//! What a SQL backend provides to the shared adapter: a connection inside one
//! transaction that runs statements, and the few statements its dialect does not share.

use async_trait::async_trait;

use super::SqlValue;
use crate::StoreResult;

/// The values of one row, in the order of the statement's columns.
pub type Row = Vec<SqlValue>;

/// A statement that changes rows and whose outcome is not read.
#[derive(Debug)]
pub struct SqlWrite {
    pub sql: &'static str,
    pub params: Vec<SqlValue>,
    /// What the write does, for errors.
    pub what: &'static str,
    /// An insert of a key the engine found free (or naming an item it found present)
    /// in this transaction: on a store where a concurrent writer can commit in between
    /// (PostgreSQL), a unique or foreign-key violation means one did, and the unit of
    /// work runs again.
    pub races: bool,
}

impl SqlWrite {
    pub fn new(sql: &'static str, what: &'static str, params: Vec<SqlValue>) -> Self {
        SqlWrite { sql, params, what, races: false }
    }

    pub fn racing(self) -> Self {
        SqlWrite { races: true, ..self }
    }
}

/// One transaction on a SQL connection, begun and ended by the backend.
#[async_trait]
pub trait SqlConn: Send {
    /// The rows of each statement, in order. Writes queued before go first: a read sees
    /// them. A driver that pipelines sends them all in one round trip.
    async fn read(&mut self, statements: &[(&str, &[SqlValue])]) -> StoreResult<Vec<Vec<Row>>>;

    /// Runs `write`, or queues it to go out with the next read or the commit (the
    /// engine never reads a write's outcome). Its error may then surface there.
    async fn write(&mut self, write: SqlWrite) -> StoreResult<()>;
}

/// The statements one SQL dialect does not share.
#[derive(Debug)]
pub struct Dialect {
    /// Whether writes lock the rows they read (PostgreSQL's `FOR NO KEY UPDATE`) rather
    /// than the whole store (SQLite's `BEGIN IMMEDIATE`).
    pub row_locks: bool,
    /// Serialises the creates under one number stem (`$1`) until commit; not needed
    /// where a write transaction excludes every other.
    pub lock_stem: Option<&'static str>,
    /// The server's clock (one `timestamptz` column), where the store is a server whose
    /// clock every worker must agree on; else this machine's clock.
    pub clock: Option<&'static str>,
    /// `select_artifacts!` with the order artifacts were first recorded in.
    pub select_artifacts: &'static str,
    /// `created_at`'s UTC month as text, `YYYY-MM-01`: the reports' month buckets.
    pub month_created: &'static str,
    /// The distinct `platform, os, image_type` of the builds meeting conditions given
    /// as `{w}` (` WHERE …` or nothing) and `{and}` (` AND …` or nothing): what `matrix`
    /// has a cell for. SQLite reads the cell index in order; PostgreSQL would hash every
    /// row, so it skips from one cell to the next along the index instead.
    pub distinct_cells: &'static str,
}
