//! (a) Transitions through the `Store` API against raw SQLite running the same
//! statements (`buildstate_store::sql::text`, in SQLite's placeholders) with the same
//! settings (`sql::configure`).
//!
//! Both drive fresh builds through all 21 milestones (start + complete = 42 writes
//! each), interleaved build by build on the same database file, so that a slow patch
//! of the machine hits both alike.

use std::path::Path;
use std::time::{Duration, Instant};

use buildstate_core::{Build, Command};
use buildstate_sqlite::{SqliteStore, sql};
use buildstate_store::sql::text;
use buildstate_store::{Guard, Store};
use rusqlite::{Connection, params};

use crate::fixture;

pub struct Figures {
    pub transitions: usize,
    pub api_per_sec: f64,
    pub raw_per_sec: f64,
}

pub fn run(rt: &tokio::runtime::Runtime, dir: &Path, quick: bool) -> Result<Figures, String> {
    let per_side = if quick { 3 } else { 40 };
    let db = dir.join("transitions.db");
    let builds = rt.block_on(fixture::builds(&db, 2 * per_side))?;
    let (api_builds, raw_builds) = builds.split_at(per_side);
    let store = SqliteStore::open(&db).map_err(|e| e.to_string())?;
    let raw = Connection::open(&db).map_err(|e| e.to_string())?;
    sql::configure(&raw).map_err(|e| e.to_string())?;

    let (mut api_time, mut raw_time, mut transitions) = (Duration::ZERO, Duration::ZERO, 0);
    for (a, r) in api_builds.iter().zip(raw_builds) {
        let (t, n) = rt.block_on(through_api(&store, a))?;
        api_time += t;
        transitions += n;
        raw_time += through_raw(&raw, r)?;
    }
    Ok(Figures {
        transitions,
        api_per_sec: transitions as f64 / api_time.as_secs_f64(),
        raw_per_sec: transitions as f64 / raw_time.as_secs_f64(),
    })
}

async fn through_api(store: &SqliteStore, build: &Build) -> Result<(Duration, usize), String> {
    let codes: Vec<_> = build.catalog.codes().collect();
    let start = Instant::now();
    for &state in &codes {
        let begin = Command::Start { state, actor: "bench".into(), log: None, force: false };
        store.apply(build.id, &begin, Guard::none()).await.map_err(|e| e.to_string())?;
        let done = Command::Complete { state, actor: "bench".into(), exit_code: Some(0), log: None };
        store.apply(build.id, &done, Guard::none()).await.map_err(|e| e.to_string())?;
    }
    Ok((start.elapsed(), 2 * codes.len()))
}

/// The same writes, statement for statement, without the store: read the row and its
/// lease record, swap the row, append the event (and, for a completion, add it to the
/// attempt statistics), in one `BEGIN IMMEDIATE` transaction per transition, with cached
/// prepared statements as the store uses them.
fn through_raw(conn: &Connection, build: &Build) -> Result<Duration, String> {
    let codes: Vec<i64> = build.catalog.codes().map(|c| i64::from(c.get())).collect();
    let id = build.id.to_string();
    let started = Instant::now();
    for (i, &state) in codes.iter().enumerate() {
        let next = codes.get(i + 1).copied();
        for completing in [false, true] {
            raw_transition(conn, &id, state, next, completing).map_err(|e| e.to_string())?;
        }
    }
    Ok(started.elapsed())
}

fn raw_transition(
    conn: &Connection,
    id: &str,
    state: i64,
    next: Option<i64>,
    completing: bool,
) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let (version, history_len, started_at): (i64, i64, Option<i64>) = conn
        .prepare_cached(&sql::placeholders(text::SELECT_BUILD_BY_ID))?
        .query_row([id], |row| Ok((row.get("version")?, row.get("history_len")?, row.get("started_at")?)))?;
    // The store reads the lease record for its fencing check; so does the baseline.
    conn.prepare_cached(&sql::placeholders(text::SELECT_LEASE))?.exists([id])?;
    let now = now_us();
    let (new_state, status, attempt, attempt_started, ended, kind) = match (completing, next) {
        (false, _) => (state, "running", 1, Some(now), None, "started"),
        (true, Some(n)) => (n, "running", 0, None, None, "completed"),
        (true, None) => (state, "completed", 1, None, Some(now), "completed"),
    };
    let mut swap = conn.prepare_cached(&sql::placeholders(text::UPDATE_BUILD_CAS))?;
    let mut swapped = swap.query(params![
        id,
        version,
        new_state,
        status,
        0,
        attempt,
        attempt_started,
        started_at.unwrap_or(now),
        ended,
        now,
        "{}",
        version + 1,
        history_len + 1,
        0
    ])?;
    if swapped.next()?.is_none() {
        return Err(rusqlite::Error::StatementChangedRows(0));
    }
    drop(swapped);
    drop(swap);
    conn.prepare_cached(&sql::placeholders(text::INSERT_EVENT))?.execute(params![
        id,
        history_len + 1,
        now,
        kind,
        state,
        1,
        "bench",
        completing.then_some(now),
        completing.then_some(0),
        completing.then_some(0),
        None::<String>,
        None::<String>,
        None::<i64>,
        0
    ])?;
    if completing {
        // A completed attempt is added to the report statistics in the same transaction.
        conn.prepare_cached(&sql::placeholders(text::ADD_ATTEMPT_STAT))?.execute(params![
            "aws-commercial",
            "rhel-8.8",
            "base",
            state,
            "completed",
            0,
            1,
            0,
            0
        ])?;
    }
    conn.execute_batch("COMMIT")
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}
