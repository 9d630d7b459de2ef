//! (e) Transitions per second with 1, 4 and 16 concurrent writers, on PostgreSQL next to
//! SQLite, in the same run: each writer on its own builds, and all writers on one
//! shared build (where most attempts are refused by the rules, and only the accepted
//! transitions count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{BuildId, Command, StateCatalog};
use buildstate_postgres::PostgresStore;
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Guard, Store, StoreError};

use crate::fixture;

pub struct Row {
    pub backend: &'static str,
    pub writers: usize,
    pub distinct_per_sec: f64,
    pub shared_per_sec: f64,
}

pub fn run(dir: &std::path::Path, pg_url: Option<&str>, quick: bool) -> Result<Vec<Row>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let builds_per_writer = if quick { 1 } else { 3 };
    let mut rows = Vec::new();
    for writers in [1usize, 4, 16] {
        let db = dir.join(format!("writers-{writers}.db"));
        let seed = rt.block_on(fixture::builds(&db, 0))?;
        drop(seed);
        let sqlite_handles: Vec<Arc<dyn Store>> = (0..writers)
            .map(|_| SqliteStore::open(&db).map(|s| Arc::new(s) as Arc<dyn Store>).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        rows.push(measure(&rt, "sqlite", &sqlite_handles, builds_per_writer)?);
        if let Some(url) = pg_url {
            let schema = format!("bench_{}_{writers}", std::process::id());
            let store = rt
                .block_on(PostgresStore::connect_with_schema(url, &schema))
                .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            rt.block_on(fixture::seed_catalog(&store))?;
            let handles: Vec<Arc<dyn Store>> =
                (0..writers).map(|_| Arc::new(store.clone()) as Arc<dyn Store>).collect();
            let row = measure(&rt, "postgres", &handles, builds_per_writer);
            let _ = std::process::Command::new("psql")
                .arg(url)
                .args(["-qAtc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
                .output();
            rows.push(row?);
        }
    }
    Ok(rows)
}

fn measure(
    rt: &tokio::runtime::Runtime,
    backend: &'static str,
    handles: &[Arc<dyn Store>],
    per_writer: usize,
) -> Result<Row, String> {
    let writers = handles.len();
    // Distinct builds: each writer drives its own builds start → complete through all
    // 21 milestones.
    let (distinct, took) = rt.block_on(async {
        let own = fixture::builds_per_handle(handles, per_writer).await?;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (h, ids) in handles.iter().cloned().zip(own) {
            tasks.spawn(async move {
                let mut n = 0usize;
                for id in ids {
                    n += drive(h.as_ref(), id).await?;
                }
                Ok::<usize, String>(n)
            });
        }
        let mut total = 0;
        while let Some(r) = tasks.join_next().await {
            total += r.map_err(|e| e.to_string())??;
        }
        Ok::<(usize, Duration), String>((total, start.elapsed()))
    })?;
    // One shared build per round: every writer races to move it on.
    let (shared, shared_took) = rt.block_on(async {
        let start = Instant::now();
        let mut total = 0usize;
        for _ in 0..per_writer {
            let id = fixture::create(handles[0].as_ref()).await?;
            let mut tasks = tokio::task::JoinSet::new();
            for h in handles {
                let h = Arc::clone(h);
                tasks.spawn(async move { race(h.as_ref(), id).await });
            }
            while let Some(r) = tasks.join_next().await {
                total += r.map_err(|e| e.to_string())??;
            }
        }
        Ok::<(usize, Duration), String>((total, start.elapsed()))
    })?;
    Ok(Row {
        backend,
        writers,
        distinct_per_sec: distinct as f64 / took.as_secs_f64(),
        shared_per_sec: shared as f64 / shared_took.as_secs_f64(),
    })
}

async fn drive(store: &dyn Store, id: BuildId) -> Result<usize, String> {
    let mut n = 0;
    for state in StateCatalog::default_catalog().codes() {
        let start = Command::Start { state, actor: "bench".into(), log: None, force: false };
        store.apply(id, &start, Guard::none()).await.map_err(|e| e.to_string())?;
        let done = Command::Complete { state, actor: "bench".into(), exit_code: Some(0), log: None };
        store.apply(id, &done, Guard::none()).await.map_err(|e| e.to_string())?;
        n += 2;
    }
    Ok(n)
}

/// Completes the current milestone until the build is delivered; counts what this
/// writer got accepted. Refusals (another writer was first) are the point of the race.
async fn race(store: &dyn Store, id: BuildId) -> Result<usize, String> {
    let mut n = 0;
    loop {
        let b = store.build(id).await.map_err(|e| e.to_string())?;
        if b.is_delivered() {
            return Ok(n);
        }
        let done = Command::Complete { state: b.state, actor: "bench".into(), exit_code: Some(0), log: None };
        match store.apply(id, &done, Guard::none()).await {
            Ok(_) => n += 1,
            Err(StoreError::Rejected(_) | StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
