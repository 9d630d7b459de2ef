//! Row mapping and migration bookkeeping shared by the SQL backends.
//!
//! Each backend implements [`ColumnReader`] for its driver's row type — typed getters
//! only, converting its storage representation (SQLite: integer microseconds and JSON
//! text; PostgreSQL: native `timestamptz`, `jsonb`, `uuid`) — and the decoders here
//! assemble the domain values once. A column that does not decode is reported as a
//! corrupt row naming the build and the column, never unwrapped: a hand-edited or
//! damaged database must not crash the CLI.
//!
//! The column lists are shared too, so the decoders' positions and the backends'
//! `SELECT`s cannot drift apart. Only the JSON columns are named differently (SQLite
//! suffixes them `_json`): `build_columns!` and `failure_columns!` take their names.
//! The lease, artifact and worker columns are the same in both.

use std::fmt::Display;
use std::str::FromStr;

use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, FailureInfo, FailureRecord, HistoryEvent, Lease, LeaseToken, Name,
    Sha256Hex, StateCatalog, StateCode, WorkerRecord,
};
use jiff::Timestamp;
use serde::de::DeserializeOwned;

use crate::{LeaseRecord, StoreError, StoreResult};

/// The columns of a build row, in the order [`build`] reads them; the arguments name the
/// catalog and metadata JSON columns.
#[macro_export]
macro_rules! build_columns {
    ($catalog:literal, $metadata:literal) => {
        concat!(
            "id, number, platform, os, image_type, ",
            $catalog,
            ", state, status, needs_intervention, attempt, attempt_started_at, created_at, \
             started_at, ended_at, updated_at, created_by, ci_url, ",
            $metadata,
            ", version, history_len, failure_count"
        )
    };
}

/// The columns of a history event, in the order [`event`] reads them.
#[macro_export]
macro_rules! event_columns {
    () => {
        "build_id, seq, at, kind, state, attempt, actor, started_at, duration_ms, exit_code, \
         message, log, from_state, forced"
    };
}

/// The columns of a failure record, in the order [`failure`] reads them; the argument
/// names the details JSON column.
#[macro_export]
macro_rules! failure_columns {
    ($details:literal) => {
        concat!(
            "build_id, number, state, attempt, at, failure_type, class, component, message, ",
            $details,
            ", exit_code, resolved, resolution, resolved_at"
        )
    };
}

/// The columns of a lease record, in the order [`lease`] reads them.
#[macro_export]
macro_rules! lease_columns {
    () => {
        "build_id, owner, host, pid, token, acquired_at, renewed_at, expires_at, released"
    };
}

/// The columns of an artifact, in the order [`artifact`] reads them.
#[macro_export]
macro_rules! artifact_columns {
    () => {
        "name, kind, uri, region, size_bytes, sha256, created_at, milestone, invalidated_at, cloud"
    };
}

/// The columns of a worker record, in the order [`worker`] reads them.
#[macro_export]
macro_rules! worker_columns {
    () => {
        "name, host, pid, started_at, last_seen, heartbeat_ms, build_id, exited_at"
    };
}

/// Stamps out the decoders of this module for one backend's row type, as plain
/// functions (`rows::build`, `rows::event`, …) that the backend passes where a
/// `Fn(&Row)` is expected: a generic function cannot be, the row's lifetimes being the
/// caller's. `$wrap` makes a [`ColumnReader`] of a `&$row`.
#[macro_export]
macro_rules! row_decoders {
    ($row:ty, $wrap:path) => {
        /// Decodes a row of `build_columns!`.
        pub(crate) fn build(row: &$row) -> $crate::StoreResult<::buildstate_core::Build> {
            $crate::sql_rows::build(&$wrap(row))
        }

        /// `(id, number)` of a prefix candidate.
        pub(crate) fn id_and_number(
            row: &$row,
        ) -> $crate::StoreResult<(::buildstate_core::BuildId, ::buildstate_core::BuildNumber)> {
            $crate::sql_rows::id_and_number(&$wrap(row), 0, 1)
        }

        /// Decodes a row of `event_columns!`.
        pub(crate) fn event(row: &$row) -> $crate::StoreResult<::buildstate_core::HistoryEvent> {
            $crate::sql_rows::event(&$wrap(row))
        }

        /// Decodes a row of `failure_columns!`.
        pub(crate) fn failure(row: &$row) -> $crate::StoreResult<::buildstate_core::FailureRecord> {
            $crate::sql_rows::failure(&$wrap(row))
        }

        /// Decodes a row of `lease_columns!`.
        pub(crate) fn lease(row: &$row) -> $crate::StoreResult<$crate::LeaseRecord> {
            $crate::sql_rows::lease(&$wrap(row))
        }

        /// A held lease and, after its columns, its build's number.
        pub(crate) fn held_lease(
            row: &$row,
        ) -> $crate::StoreResult<(::buildstate_core::BuildNumber, ::buildstate_core::Lease)> {
            $crate::sql_rows::held_lease(&$wrap(row))
        }

        /// Decodes a row of `artifact_columns!` for `build`.
        pub(crate) fn artifact(
            build: &::buildstate_core::BuildId,
            row: &$row,
        ) -> $crate::StoreResult<::buildstate_core::Artifact> {
            $crate::sql_rows::artifact(build, &$wrap(row))
        }

        /// Decodes a row of `worker_columns!`.
        pub(crate) fn worker(row: &$row) -> $crate::StoreResult<::buildstate_core::WorkerRecord> {
            $crate::sql_rows::worker(&$wrap(row))
        }
    };
}

/// Typed access to the columns of one row of a SQL backend, by position. Errors are the
/// driver's message; the decoders add the build and the column.
pub trait ColumnReader {
    /// The `context` of a corrupt-row error: which store the row came from.
    const CORRUPT: &'static str;

    fn text(&self, i: usize) -> Result<String, String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, String>;
    fn int(&self, i: usize) -> Result<i64, String>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, String>;
    fn bool(&self, i: usize) -> Result<bool, String>;
    fn time(&self, i: usize) -> Result<Timestamp, String>;
    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, String>;
    /// A JSON column; `None` when NULL.
    fn json(&self, i: usize) -> Result<Option<serde_json::Value>, String>;

    /// A build id column. By default the id's text form.
    fn id(&self, i: usize) -> Result<BuildId, String> {
        self.text(i)?.parse().map_err(|e: <BuildId as FromStr>::Err| e.to_string())
    }

    /// A build id column that may be NULL. By default the id's text form; a backend
    /// that overrides [`ColumnReader::id`] overrides this too.
    fn opt_id(&self, i: usize) -> Result<Option<BuildId>, String> {
        let text = self.opt_text(i)?;
        text.map(|t| t.parse().map_err(|e: <BuildId as FromStr>::Err| e.to_string())).transpose()
    }

    /// How messages name the build whose id is in column `i`, even when it does not
    /// decode.
    fn build_label(&self, i: usize) -> String {
        self.text(i).unwrap_or_else(|_| "(unreadable id)".to_owned())
    }
}

/// The error for a row of `build` that does not decode.
pub fn corrupt_row<R: ColumnReader>(build: &str, what: impl Display) -> StoreError {
    StoreError::Backend { context: R::CORRUPT, source: format!("build {build}: {what}").into() }
}

/// Reads the columns of one row on behalf of one build (or worker), so that every
/// decoding error names the build and the column.
struct Cols<'r, R> {
    row: &'r R,
    /// `build <id>`, `worker <name>`.
    subject: String,
}

impl<'r, R: ColumnReader> Cols<'r, R> {
    fn new(row: &'r R, build_column: usize) -> Self {
        Cols { row, subject: format!("build {}", row.build_label(build_column)) }
    }

    fn check<T, E: Display>(&self, column: &str, value: Result<T, E>) -> StoreResult<T> {
        value.map_err(|e| StoreError::Backend {
            context: R::CORRUPT,
            source: format!("{}: column {column}: {e}", self.subject).into(),
        })
    }

    fn text(&self, i: usize, column: &str) -> StoreResult<String> {
        self.check(column, self.row.text(i))
    }

    fn opt_text(&self, i: usize, column: &str) -> StoreResult<Option<String>> {
        self.check(column, self.row.opt_text(i))
    }

    fn bool(&self, i: usize, column: &str) -> StoreResult<bool> {
        self.check(column, self.row.bool(i))
    }

    fn time(&self, i: usize, column: &str) -> StoreResult<Timestamp> {
        self.check(column, self.row.time(i))
    }

    fn opt_time(&self, i: usize, column: &str) -> StoreResult<Option<Timestamp>> {
        self.check(column, self.row.opt_time(i))
    }

    fn id(&self, i: usize, column: &str) -> StoreResult<BuildId> {
        self.check(column, self.row.id(i))
    }

    fn parse<T>(
        &self,
        i: usize,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> StoreResult<T> {
        let raw = self.text(i, column)?;
        self.check(column, parse(&raw))
    }

    fn word<T: FromStr<Err: Display>>(&self, i: usize, column: &str) -> StoreResult<T> {
        self.parse(i, column, |s| s.parse::<T>().map_err(|e| e.to_string()))
    }

    fn name(&self, i: usize, column: &str) -> StoreResult<Name> {
        self.parse(i, column, |s| Name::new(s).map_err(|e| e.to_string()))
    }

    fn number(&self, i: usize) -> StoreResult<BuildNumber> {
        self.parse(i, "number", |s| BuildNumber::new(s).map_err(|e| e.to_string()))
    }

    /// Integers are stored signed; each field's range is checked on the way out.
    fn int<T: TryFrom<i64>>(&self, i: usize, column: &str) -> StoreResult<T> {
        let n = self.check(column, self.row.int(i))?;
        self.check(column, T::try_from(n).map_err(|_| format!("{n} is out of range")))
    }

    fn opt_int<T: TryFrom<i64>>(&self, i: usize, column: &str) -> StoreResult<Option<T>> {
        let n = self.check(column, self.row.opt_int(i))?;
        let n = n.map(|n| T::try_from(n).map_err(|_| format!("{n} is out of range"))).transpose();
        self.check(column, n)
    }

    fn state(&self, i: usize, column: &str) -> StoreResult<StateCode> {
        let n = self.check(column, self.row.int(i))?;
        self.check(column, StateCode::new(n))
    }

    fn opt_state(&self, i: usize, column: &str) -> StoreResult<Option<StateCode>> {
        let n = self.check(column, self.row.opt_int(i))?;
        self.check(column, n.map(StateCode::new).transpose())
    }

    fn opt_json<T: DeserializeOwned>(&self, i: usize, column: &str) -> StoreResult<Option<T>> {
        let value = self.check(column, self.row.json(i))?;
        self.check(column, value.map(serde_json::from_value).transpose())
    }

    fn json<T: DeserializeOwned>(&self, i: usize, column: &str) -> StoreResult<T> {
        let value = self.opt_json(i, column)?;
        self.check(column, value.ok_or("unexpected NULL"))
    }
}

/// Decodes a row of `build_columns!`.
pub fn build(row: &impl ColumnReader) -> StoreResult<Build> {
    let c = Cols::new(row, 0);
    Ok(Build {
        id: c.id(0, "id")?,
        number: c.number(1)?,
        platform: c.name(2, "platform")?,
        os: c.name(3, "os")?,
        image_type: c.name(4, "image_type")?,
        catalog: c.opt_json(5, "catalog")?.unwrap_or_else(StateCatalog::default_catalog),
        state: c.state(6, "state")?,
        status: c.word(7, "status")?,
        needs_intervention: c.bool(8, "needs_intervention")?,
        attempt: c.int(9, "attempt")?,
        attempt_started_at: c.opt_time(10, "attempt_started_at")?,
        created_at: c.time(11, "created_at")?,
        started_at: c.opt_time(12, "started_at")?,
        ended_at: c.opt_time(13, "ended_at")?,
        updated_at: c.time(14, "updated_at")?,
        created_by: c.text(15, "created_by")?,
        ci_url: c.opt_text(16, "ci_url")?,
        metadata: c.json(17, "metadata")?,
        version: c.int(18, "version")?,
        history_len: c.int(19, "history_len")?,
        failure_count: c.int(20, "failure_count")?,
    })
}

/// `(id, number)` from columns `id` and `number` of a row (a prefix candidate: 0 and 1).
pub fn id_and_number(
    row: &impl ColumnReader,
    id: usize,
    number: usize,
) -> StoreResult<(BuildId, BuildNumber)> {
    let c = Cols::new(row, id);
    Ok((c.id(id, "id")?, c.number(number)?))
}

/// Decodes a row of `event_columns!`.
pub fn event(row: &impl ColumnReader) -> StoreResult<HistoryEvent> {
    let c = Cols::new(row, 0);
    Ok(HistoryEvent {
        seq: c.int(1, "seq")?,
        at: c.time(2, "at")?,
        kind: c.word(3, "kind")?,
        state: c.state(4, "state")?,
        attempt: c.int(5, "attempt")?,
        actor: c.text(6, "actor")?,
        started_at: c.opt_time(7, "started_at")?,
        duration_ms: c.opt_int(8, "duration_ms")?,
        exit_code: c.opt_int(9, "exit_code")?,
        message: c.opt_text(10, "message")?,
        log: c.opt_text(11, "log")?,
        from_state: c.opt_state(12, "from_state")?,
        forced: c.bool(13, "forced")?,
    })
}

/// Decodes a row of `failure_columns!`.
pub fn failure(row: &impl ColumnReader) -> StoreResult<FailureRecord> {
    let c = Cols::new(row, 0);
    Ok(FailureRecord {
        build_id: c.id(0, "build_id")?,
        number: c.int(1, "number")?,
        state: c.state(2, "state")?,
        attempt: c.int(3, "attempt")?,
        at: c.time(4, "at")?,
        info: FailureInfo {
            failure_type: c.word(5, "failure_type")?,
            class: c.word(6, "class")?,
            component: c.opt_text(7, "component")?,
            message: c.text(8, "message")?,
            details: c.json(9, "details")?,
            exit_code: c.opt_int(10, "exit_code")?,
        },
        resolved: c.bool(11, "resolved")?,
        resolution: c.opt_text(12, "resolution")?,
        resolved_at: c.opt_time(13, "resolved_at")?,
    })
}

/// Decodes a row of `lease_columns!`.
pub fn lease(row: &impl ColumnReader) -> StoreResult<LeaseRecord> {
    let c = Cols::new(row, 0);
    Ok(LeaseRecord {
        lease: Lease {
            build_id: c.id(0, "build_id")?,
            owner: c.text(1, "owner")?,
            host: c.text(2, "host")?,
            pid: c.int(3, "pid")?,
            token: LeaseToken::new(c.int(4, "token")?),
            acquired_at: c.time(5, "acquired_at")?,
            renewed_at: c.time(6, "renewed_at")?,
            expires_at: c.time(7, "expires_at")?,
        },
        released: c.bool(8, "released")?,
    })
}

/// A held lease and, in column 9 after its columns, its build's number.
pub fn held_lease(row: &impl ColumnReader) -> StoreResult<(BuildNumber, Lease)> {
    Ok((Cols::new(row, 0).number(9)?, lease(row)?.lease))
}

/// Decodes a row of `artifact_columns!` for `build`.
pub fn artifact(build: &BuildId, row: &impl ColumnReader) -> StoreResult<Artifact> {
    let c = Cols { row, subject: format!("build {build}") };
    let sha256 = c.opt_text(5, "sha256")?;
    Ok(Artifact {
        name: c.text(0, "name")?,
        kind: c.word(1, "kind")?,
        uri: c.text(2, "uri")?,
        region: c.opt_text(3, "region")?,
        size_bytes: c.opt_int(4, "size_bytes")?,
        sha256: c.check("sha256", sha256.map(|s| Sha256Hex::new(&s)).transpose())?,
        created_at: c.time(6, "created_at")?,
        milestone: c.opt_state(7, "milestone")?,
        invalidated_at: c.opt_time(8, "invalidated_at")?,
        cloud: c.opt_text(9, "cloud")?,
    })
}

/// Decodes a row of `worker_columns!`.
pub fn worker(row: &impl ColumnReader) -> StoreResult<WorkerRecord> {
    let label = row.text(0).unwrap_or_else(|_| "(unreadable name)".to_owned());
    let c = Cols { row, subject: format!("worker {label}") };
    Ok(WorkerRecord {
        name: c.text(0, "name")?,
        host: c.text(1, "host")?,
        pid: c.int(2, "pid")?,
        started_at: c.time(3, "started_at")?,
        last_seen: c.time(4, "last_seen")?,
        heartbeat_ms: c.int(5, "heartbeat_ms")?,
        build: c.check("build_id", c.row.opt_id(6))?,
        exited_at: c.opt_time(7, "exited_at")?,
    })
}

/// One schema step of a SQL backend, embedded in its binary. Never edit or reorder a
/// released one: add a new file.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Lowercase hex SHA-256 of a migration's text, as `schema_migrations` records it and
/// [`check_applied`] compares it.
pub fn checksum(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Every recorded migration must be one this binary embeds, with the same text.
///
/// `known`: `(version, checksum)` of each embedded migration, versions 1, 2, 3, …;
/// `applied`: `(version, name, checksum)` as recorded in the database. A recorded
/// migration this binary does not know (a newer buildstate wrote the database) or whose
/// text changed after release makes the store `Unavailable` at `location`.
pub fn check_applied<V: Copy + Into<i64> + Display>(
    known: &[(u32, String)],
    applied: &[(V, String, String)],
    location: &str,
) -> StoreResult<()> {
    let unavailable = |reason: String| StoreError::Unavailable { location: location.to_owned(), reason };
    let latest = known.len();
    for (version, name, recorded) in applied {
        let Some((_, checksum)) = known.iter().find(|(v, _)| i64::from(*v) == (*version).into()) else {
            return Err(unavailable(format!(
                "it records migration {version} ({name}), newer than this buildstate knows ({latest}); \
                 upgrade buildstate"
            )));
        };
        if checksum != recorded {
            return Err(unavailable(format!(
                "migration {version} ({name}) was applied from a different text than this buildstate embeds \
                 (checksum {recorded}); released migrations must never change"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<(u32, String)> {
        vec![(1, "aa".to_owned()), (2, "bb".to_owned())]
    }

    fn reason(result: StoreResult<()>) -> String {
        match result {
            Err(StoreError::Unavailable { reason, location }) => {
                assert_eq!(location, "db");
                reason
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn known_migrations_with_their_text_pass() {
        let applied = [(1_u32, "init".to_owned(), "aa".to_owned())];
        check_applied(&known(), &applied, "db").expect("known");
        check_applied::<i32>(&known(), &[], "db").expect("nothing applied");
    }

    #[test]
    fn a_newer_migration_is_refused() {
        let applied = [(3_i32, "future".to_owned(), "cc".to_owned())];
        assert_eq!(
            reason(check_applied(&known(), &applied, "db")),
            "it records migration 3 (future), newer than this buildstate knows (2); upgrade buildstate"
        );
    }

    #[test]
    fn a_changed_migration_is_refused() {
        let applied = [(1_u32, "init".to_owned(), "edited".to_owned())];
        assert!(
            reason(check_applied(&known(), &applied, "db"))
                .starts_with("migration 1 (init) was applied from a different text"),
        );
    }
}
