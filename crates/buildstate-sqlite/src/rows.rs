//! Rows to domain values. A row that does not decode is reported as corrupt, naming the
//! build, never unwrapped: a hand-edited or damaged file must not crash the CLI.

use std::str::FromStr;

use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, FailureInfo, FailureRecord, HistoryEvent, Lease, LeaseToken, Name,
    Sha256Hex, StateCatalog, StateCode,
};
use buildstate_store::{LeaseRecord, StoreResult};
use jiff::Timestamp;
use rusqlite::types::FromSql;
use rusqlite::{Connection, Params, Row};

use crate::error::{SqlContext, corrupt};

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

/// Reads the columns of one row on behalf of one build, so that every decoding error
/// names the build and the column.
struct Cols<'r, 's> {
    row: &'r Row<'s>,
    build: String,
}

impl Cols<'_, '_> {
    fn get<T: FromSql>(&self, i: usize, column: &str) -> StoreResult<T> {
        self.row.get(i).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn parse<T>(
        &self,
        i: usize,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> StoreResult<T> {
        let raw: String = self.get(i, column)?;
        parse(&raw).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn word<T: FromStr<Err: std::fmt::Display>>(&self, i: usize, column: &str) -> StoreResult<T> {
        self.parse(i, column, |s| s.parse::<T>().map_err(|e| e.to_string()))
    }

    /// SQLite integers are signed; counters and sizes are stored non-negative.
    fn unsigned(&self, i: usize, column: &str) -> StoreResult<u64> {
        let n: i64 = self.get(i, column)?;
        u64::try_from(n).map_err(|_| corrupt(&self.build, format!("column {column}: negative value {n}")))
    }

    fn opt_unsigned(&self, i: usize, column: &str) -> StoreResult<Option<u64>> {
        let n: Option<i64> = self.get(i, column)?;
        n.map(|n| {
            u64::try_from(n).map_err(|_| corrupt(&self.build, format!("column {column}: negative value {n}")))
        })
        .transpose()
    }

    fn state(&self, i: usize, column: &str) -> StoreResult<StateCode> {
        let n: i64 = self.get(i, column)?;
        StateCode::new(n).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn opt_state(&self, i: usize, column: &str) -> StoreResult<Option<StateCode>> {
        let n: Option<i64> = self.get(i, column)?;
        n.map(StateCode::new).transpose().map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn time(&self, i: usize, column: &str) -> StoreResult<Timestamp> {
        let us: i64 = self.get(i, column)?;
        Timestamp::from_microsecond(us).map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn opt_time(&self, i: usize, column: &str) -> StoreResult<Option<Timestamp>> {
        let us: Option<i64> = self.get(i, column)?;
        us.map(Timestamp::from_microsecond)
            .transpose()
            .map_err(|e| corrupt(&self.build, format!("column {column}: {e}")))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, i: usize, column: &str) -> StoreResult<T> {
        self.parse(i, column, |s| serde_json::from_str(s).map_err(|e| e.to_string()))
    }
}

fn cols<'r, 's>(row: &'r Row<'s>, build_column: usize) -> Cols<'r, 's> {
    let build = row.get::<_, String>(build_column).unwrap_or_else(|_| "(unreadable id)".to_owned());
    Cols { row, build }
}

fn name(s: &str) -> Result<Name, String> {
    Name::new(s).map_err(|e| e.to_string())
}

/// Decodes a row of [`crate::sql::SELECT_BUILD_BY_ID`] (columns in `build_columns!` order).
pub(crate) fn build(row: &Row<'_>) -> StoreResult<Build> {
    let c = cols(row, 0);
    let catalog_json: Option<String> = c.get(5, "catalog_json")?;
    let catalog = match catalog_json {
        None => StateCatalog::default_catalog(),
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| corrupt(&c.build, format!("column catalog_json: {e}")))?
        }
    };
    Ok(Build {
        id: c.word(0, "id")?,
        number: c.parse(1, "number", |s| BuildNumber::new(s).map_err(|e| e.to_string()))?,
        platform: c.parse(2, "platform", name)?,
        os: c.parse(3, "os", name)?,
        image_type: c.parse(4, "image_type", name)?,
        catalog,
        state: c.state(6, "state")?,
        status: c.word(7, "status")?,
        needs_intervention: c.get(8, "needs_intervention")?,
        attempt: c.get(9, "attempt")?,
        attempt_started_at: c.opt_time(10, "attempt_started_at")?,
        created_at: c.time(11, "created_at")?,
        started_at: c.opt_time(12, "started_at")?,
        ended_at: c.opt_time(13, "ended_at")?,
        updated_at: c.time(14, "updated_at")?,
        created_by: c.get(15, "created_by")?,
        ci_url: c.get(16, "ci_url")?,
        metadata: c.json(17, "metadata_json")?,
        version: c.unsigned(18, "version")?,
        history_len: c.unsigned(19, "history_len")?,
        failure_count: c.get(20, "failure_count")?,
    })
}

/// `(id, number)` of a prefix candidate.
pub(crate) fn id_and_number(row: &Row<'_>) -> StoreResult<(BuildId, BuildNumber)> {
    id_and_number_at(row, 0, 1)
}

/// `(id, number)` from columns `id` and `number` of a row.
pub(crate) fn id_and_number_at(
    row: &Row<'_>,
    id: usize,
    number: usize,
) -> StoreResult<(BuildId, BuildNumber)> {
    let c = cols(row, id);
    Ok((c.word(id, "id")?, c.parse(number, "number", |s| BuildNumber::new(s).map_err(|e| e.to_string()))?))
}

/// Decodes a row of `event_columns!`.
pub(crate) fn event(row: &Row<'_>) -> StoreResult<HistoryEvent> {
    let c = cols(row, 0);
    Ok(HistoryEvent {
        seq: c.unsigned(1, "seq")?,
        at: c.time(2, "at")?,
        kind: c.word(3, "kind")?,
        state: c.state(4, "state")?,
        attempt: c.get(5, "attempt")?,
        actor: c.get(6, "actor")?,
        started_at: c.opt_time(7, "started_at")?,
        duration_ms: c.opt_unsigned(8, "duration_ms")?,
        exit_code: c.get(9, "exit_code")?,
        message: c.get(10, "message")?,
        log: c.get(11, "log")?,
        from_state: c.opt_state(12, "from_state")?,
        forced: c.get(13, "forced")?,
    })
}

/// Decodes a row of `failure_columns!`.
pub(crate) fn failure(row: &Row<'_>) -> StoreResult<FailureRecord> {
    let c = cols(row, 0);
    Ok(FailureRecord {
        build_id: c.word(0, "build_id")?,
        number: c.get(1, "number")?,
        state: c.state(2, "state")?,
        attempt: c.get(3, "attempt")?,
        at: c.time(4, "at")?,
        info: FailureInfo {
            failure_type: c.word(5, "failure_type")?,
            class: c.word(6, "class")?,
            component: c.get(7, "component")?,
            message: c.get(8, "message")?,
            details: c.json(9, "details_json")?,
            exit_code: c.get(10, "exit_code")?,
        },
        resolved: c.get(11, "resolved")?,
        resolution: c.get(12, "resolution")?,
        resolved_at: c.opt_time(13, "resolved_at")?,
    })
}

/// Decodes a row of `lease_columns!`.
pub(crate) fn lease(row: &Row<'_>) -> StoreResult<LeaseRecord> {
    let c = cols(row, 0);
    Ok(LeaseRecord {
        lease: Lease {
            build_id: c.word(0, "build_id")?,
            owner: c.get(1, "owner")?,
            host: c.get(2, "host")?,
            pid: c.get(3, "pid")?,
            token: LeaseToken::new(c.unsigned(4, "token")?),
            acquired_at: c.time(5, "acquired_at")?,
            renewed_at: c.time(6, "renewed_at")?,
            expires_at: c.time(7, "expires_at")?,
        },
        released: c.get(8, "released")?,
    })
}

/// Decodes a row of `artifact_columns!` for `build`.
pub(crate) fn artifact(build: &BuildId, row: &Row<'_>) -> StoreResult<Artifact> {
    let c = Cols { row, build: build.to_string() };
    let sha256: Option<String> = c.get(5, "sha256")?;
    Ok(Artifact {
        name: c.get(0, "name")?,
        kind: c.word(1, "kind")?,
        uri: c.get(2, "uri")?,
        region: c.get(3, "region")?,
        size_bytes: c.opt_unsigned(4, "size_bytes")?,
        sha256: sha256
            .map(|s| Sha256Hex::new(&s))
            .transpose()
            .map_err(|e| corrupt(&c.build, format!("column sha256: {e}")))?,
        created_at: c.time(6, "created_at")?,
    })
}
