//! (h) Every report, and `build list` of the newest 50, on a generated year of builds
//! (100,000 builds, about 2 million attempts; [`generate`]) in SQLite and PostgreSQL,
//! and on 5,000 builds in the JSON-file store: the median of 5 runs of each, next to its
//! target. A missed target is printed (✗), never an error: a timed figure must not fail
//! a run on a slow day.
//!
//! The builds go in through the store engine (`Store::import_build`, one document per
//! transaction), so the generation rate is a figure too: one importer on SQLite (one
//! writer is all it has), several on PostgreSQL.

mod generate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use buildstate_core::StateCode;
use buildstate_files::FileStore;
use buildstate_postgres::PostgresStore;
use buildstate_sqlite::SqliteStore;
use buildstate_store::report::{ReportName, ReportRequest};
use buildstate_store::{BuildFilter, FailureFilter, ImportMode, Store, StoreError};
use jiff::Timestamp;
use nix::sys::resource::{UsageWho, getrusage};

use crate::stats;

/// Runs of each figure; the median is printed.
const RUNS: usize = 5;
/// The data set's seed ("buildsta"): the same seed and anchor give the same builds.
const SEED: u64 = 0x6275_696c_6473_7461;
/// Concurrent importers on PostgreSQL (the pool holds 16 connections).
const PG_IMPORTERS: usize = 8;
/// Hourly rates for `cost` and `time-saved`: two platforms, so that the others show as
/// "no rate" the way a partly configured `[cost]` does.
const RATES: [(&str, f64); 2] = [("aws-commercial", 0.48), ("azure", 0.52)];

/// What `--reports` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub quick: bool,
    /// Reuse (or generate into, and keep) this SQLite file.
    pub db: Option<PathBuf>,
    /// Reuse (or generate into, and keep) this PostgreSQL schema.
    pub pg_schema: Option<String>,
    /// Measure only these backends (`sqlite`, `postgres`, `files`); all when empty.
    pub backends: Vec<String>,
}

impl Options {
    fn wants(&self, backend: &str) -> bool {
        self.backends.is_empty() || self.backends.iter().any(|b| b == backend)
    }
}

/// The backends `--reports-backends` may name.
pub const BACKENDS: [&str; 3] = ["sqlite", "postgres", "files"];

/// How a data set got into a store.
struct Generation {
    builds: usize,
    attempts: u64,
    took: Duration,
    importers: usize,
}

/// A timed figure: the median, and the rows of the report; or why it could not be had.
type Figure = Result<(Duration, usize), String>;

/// One backend's figures.
struct Measured {
    backend: &'static str,
    location: String,
    builds: u64,
    attempts: u64,
    /// The overview's counts: `status N` pairs.
    statuses: String,
    /// `None`: an existing data set was reused.
    generation: Option<Generation>,
    list: Result<Duration, String>,
    reports: Vec<(ReportName, Figure)>,
    /// This process's peak resident memory once this backend was measured (reports that
    /// read every attempt hold them all).
    max_rss_kib: i64,
}

/// Milliseconds a figure should stay under.
fn target(backend: &str, report: Option<ReportName>) -> f64 {
    match report {
        None => 20.0,
        Some(ReportName::Overview | ReportName::Matrix) => 50.0,
        Some(_) if backend == "postgres" => 200.0,
        Some(_) => 100.0,
    }
}

pub fn run(scratch: &Path, pg_url: Option<&str>, opts: &Options) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (builds, file_builds) = if opts.quick { (5_000, 1_000) } else { (100_000, 5_000) };
    // The end of the year of builds: this hour, so that the newest builds are still
    // queued or running when the reports look, as they would be.
    let now = Timestamp::now().as_second();
    let anchor = Timestamp::from_second(now - now.rem_euclid(3600)).map_err(|e| e.to_string())?;
    let spec = generate::Spec { builds, seed: SEED, anchor };
    let mut measured = Vec::new();
    // A backend that cannot be measured (unreachable, a schema from a newer buildstate)
    // is said so at the end; the other backends' figures are still printed.
    let mut missing: Vec<(&'static str, String)> = Vec::new();
    let mut keep = |backend: &'static str, result: Result<Measured, String>| match result {
        Ok(m) => measured.push(m),
        Err(e) => {
            eprintln!("{backend}: not measured: {e}");
            missing.push((backend, e));
        }
    };

    let db = opts.db.clone().unwrap_or_else(|| scratch.join("reports.db"));
    let kept = if opts.db.is_some() { format!("kept at {}", db.display()) } else { "scratch".into() };
    if opts.wants("sqlite") {
        let sqlite = SqliteStore::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()));
        keep("sqlite", sqlite.and_then(|s| rt.block_on(measure("sqlite", kept, Arc::new(s), spec, 1))));
    }

    if let Some(url) = pg_url.filter(|_| opts.wants("postgres")) {
        let schema =
            opts.pg_schema.clone().unwrap_or_else(|| format!("bench_reports_{}", std::process::id()));
        let kept =
            if opts.pg_schema.is_some() { format!("kept in schema {schema}") } else { "scratch".into() };
        let row = rt
            .block_on(PostgresStore::connect_with_schema(url, &schema))
            .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))
            .and_then(|store| rt.block_on(measure("postgres", kept, Arc::new(store), spec, PG_IMPORTERS)));
        if opts.pg_schema.is_none() {
            let _ = std::process::Command::new("psql")
                .arg(url)
                .args(["-qAtc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")])
                .output();
        }
        keep("postgres", row);
    }

    if opts.wants("files") {
        let dir = scratch.join("reports-files");
        let files_spec = generate::Spec { builds: file_builds, ..spec };
        let files = FileStore::open(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()));
        keep(
            "files",
            files.and_then(|f| rt.block_on(measure("files", "scratch".into(), Arc::new(f), files_spec, 1))),
        );
    }

    // Postgres left out on purpose is not "not measured".
    print(&spec, pg_url.is_some() || !opts.wants("postgres"), &measured, &missing);
    if measured.is_empty() {
        return Err("no backend could be measured".into());
    }
    Ok(())
}

/// Fills the store unless it already holds builds, then times every figure.
async fn measure(
    backend: &'static str,
    location: String,
    store: Arc<dyn Store>,
    spec: generate::Spec,
    importers: usize,
) -> Result<Measured, String> {
    let any = store
        .list_builds(&BuildFilter { limit: Some(1), ..BuildFilter::default() })
        .await
        .map_err(|e| format!("{backend}: {e}"))?;
    let generation = if any.is_empty() {
        Some(fill(backend, Arc::clone(&store), spec, importers).await?)
    } else {
        eprintln!("{backend}: reusing the builds already in {}", store.location());
        None
    };
    // Counting reads everything once: the timed runs below start from a warm cache, as
    // a store in daily use is.
    eprintln!("{backend}: counting, then timing {} reports × {RUNS}", ReportName::ALL.len());
    let (builds, attempts, statuses) = count(store.as_ref()).await.map_err(|e| format!("{backend}: {e}"))?;
    if let Some(g) = &generation
        && (builds != g.builds as u64 || attempts != g.attempts)
    {
        eprintln!(
            "{backend}: warning: the store counts {builds} builds and {attempts} attempts, the generator made {} and {}",
            g.builds, g.attempts
        );
    }
    let list = time(RUNS, || async {
        store.list_builds(&BuildFilter { limit: Some(50), ..BuildFilter::default() }).await.map(|b| b.len())
    })
    .await
    .map(|(d, _)| d);
    let mut reports = Vec::new();
    for &name in ReportName::ALL {
        let req = request(name);
        let figure = time(RUNS, || async { store.report(&req).await.map(|r| r.rows.len()) }).await;
        eprintln!(
            "{backend}: {name:<20} {}",
            figure
                .as_ref()
                .map_or_else(|e| format!("error: {e}"), |(d, _)| format!("{:.1} ms", stats::ms(*d)))
        );
        reports.push((name, figure));
    }
    let max_rss_kib = getrusage(UsageWho::RUSAGE_SELF).map(|u| u.max_rss()).unwrap_or(0);
    Ok(Measured { backend, location, builds, attempts, statuses, generation, list, reports, max_rss_kib })
}

fn request(name: ReportName) -> ReportRequest {
    let mut req = ReportRequest::new(name);
    req.rates = RATES.iter().map(|&(p, r)| (p.to_owned(), r)).collect::<BTreeMap<_, _>>();
    if name == ReportName::Resumable {
        req.from = StateCode::new(45).ok();
    }
    req
}

/// The median of `runs` calls of `f`, and what its last call returned.
async fn time<F, Fut>(runs: usize, mut f: F) -> Figure
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StoreError>>,
{
    let mut samples = Vec::with_capacity(runs);
    let mut rows = 0;
    for _ in 0..runs {
        let start = Instant::now();
        rows = f().await.map_err(|e| e.to_string())?;
        samples.push(start.elapsed());
    }
    Ok((stats::median(&mut samples), rows))
}

/// Builds and attempts as the store sees them: the overview's total (and its counts per
/// status), and the completed attempts of `durations` plus one failure record per
/// failed attempt.
async fn count(store: &dyn Store) -> Result<(u64, u64, String), StoreError> {
    let overview = store.report(&ReportRequest::new(ReportName::Overview)).await?;
    let of = |key: &str| {
        overview.rows.first().and_then(|row| overview.get(row, key)).and_then(|c| c.as_int()).unwrap_or(0)
    };
    let builds = of("total");
    let statuses = format!(
        "completed {}, failed {} ({} need a person), running {}, pending {}, cancelled {}",
        of("completed"),
        of("failed"),
        of("needs_person"),
        of("running"),
        of("pending"),
        of("cancelled")
    );
    let durations = store.report(&ReportRequest::new(ReportName::Durations)).await?;
    let completed: i64 =
        durations.rows.iter().filter_map(|row| durations.get(row, "count").and_then(|c| c.as_int())).sum();
    let failed = store.failures(&FailureFilter::default()).await?.len();
    Ok((builds as u64, completed as u64 + failed as u64, statuses))
}

/// Generates the data set into `store`: the catalog first, then every build through
/// `import_build`, documents made on a thread of their own while `importers` tasks
/// store them.
async fn fill(
    backend: &'static str,
    store: Arc<dyn Store>,
    spec: generate::Spec,
    importers: usize,
) -> Result<Generation, String> {
    for item in generate::catalog()? {
        match store.add_catalog_item(&item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(format!("{backend}: cannot add {}: {e}", item.name())),
        }
    }
    eprintln!("{backend}: generating {} builds ({importers} importer(s))", spec.builds);
    let start = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<generate::Generated>(512);
    let producer = std::thread::spawn(move || -> Result<(), String> {
        for p in generate::plan(&spec) {
            if tx.blocking_send(generate::document(&spec, &p)?).is_err() {
                break; // the importers stopped (an error): theirs is the one to report
            }
        }
        Ok(())
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let done = Arc::new(AtomicUsize::new(0));
    let attempts = Arc::new(AtomicU64::new(0));
    let every = (spec.builds / 10).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..importers {
        let (store, rx, done, attempts) =
            (Arc::clone(&store), Arc::clone(&rx), Arc::clone(&done), Arc::clone(&attempts));
        tasks.spawn(async move {
            loop {
                let Some(g) = rx.lock().await.recv().await else { return Ok::<(), String>(()) };
                let number = g.parts.build.number.clone();
                store
                    .import_build(g.parts, ImportMode::CreateOnly)
                    .await
                    .map_err(|e| format!("{backend}: cannot import {number}: {e}"))?;
                attempts.fetch_add(g.attempts, Ordering::Relaxed);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % every == 0 {
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!("{backend}: {n} builds in {secs:.0} s ({:.0} builds/s)", n as f64 / secs);
                }
            }
        });
    }
    drop(rx);
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    producer.join().map_err(|_| "the generator thread panicked".to_owned())??;
    Ok(Generation {
        builds: done.load(Ordering::Relaxed),
        attempts: attempts.load(Ordering::Relaxed),
        took: start.elapsed(),
        importers,
    })
}

fn cell(backend: &str, report: Option<ReportName>, figure: &Result<Duration, String>) -> String {
    match figure {
        Ok(d) => {
            let (ms, limit) = (stats::ms(*d), target(backend, report));
            let mark = if ms < limit { '✓' } else { '✗' };
            format!("{ms:>10.1} {mark} <{limit:<3.0}")
        }
        Err(_) => format!("{:>16}", "error"),
    }
}

fn print(spec: &generate::Spec, pg: bool, measured: &[Measured], missing: &[(&str, String)]) {
    println!();
    println!(
        "(h) reports on a generated year of builds, median of {RUNS} runs in ms (✓ under the target, ✗ over it; printed, never failed)"
    );
    println!(
        "    data set: seed {SEED:#x}, 12 months up to {}, 6 platforms × 10 OS × 4 image types, 21 milestones",
        spec.anchor
    );
    for m in measured {
        let how = match &m.generation {
            Some(g) => format!(
                "generated in {:.1} s: {:.0} builds/s through the store engine ({} importer{})",
                g.took.as_secs_f64(),
                g.builds as f64 / g.took.as_secs_f64(),
                g.importers,
                if g.importers == 1 { "" } else { "s" }
            ),
            None => "reused".into(),
        };
        println!("    {:<8}: {} builds, {} attempts; {how}; {}", m.backend, m.builds, m.attempts, m.location);
        println!("    {:<8}  ({})", "", m.statuses);
    }
    for (backend, why) in missing {
        println!("    {backend:<8}: not measured: {why}");
    }
    if !pg {
        println!(
            "    PostgreSQL not measured: set BUILDSTATE_TEST_POSTGRES_URL (scripts/bench.sh starts it)"
        );
    }
    println!();
    let mut header = format!("    {:<24} {:>6}", "figure", "rows");
    for m in measured {
        header.push_str(&format!(" {:>16}", format!("{}@{}", m.backend, m.builds)));
    }
    println!("{header}");
    let figure_of = |m: &Measured, name: ReportName| {
        m.reports.iter().find(|(n, _)| *n == name).map(|(_, f)| f.clone().map(|(d, _)| d))
    };
    let mut line = format!("    {:<24} {:>6}", "build list (newest 50)", 50);
    for m in measured {
        line.push_str(&format!(" {}", cell(m.backend, None, &m.list)));
    }
    println!("{}", line.trim_end());
    for &name in ReportName::ALL {
        let shown = measured
            .first()
            .and_then(|m| m.reports.iter().find(|(n, _)| *n == name))
            .and_then(|(_, f)| f.as_ref().ok().map(|(_, r)| r.to_string()))
            .unwrap_or_default();
        let mut line = format!("    {:<24} {shown:>6}", name.as_str());
        for m in measured {
            let figure = figure_of(m, name).unwrap_or_else(|| Err("not run".into()));
            line.push_str(&format!(" {}", cell(m.backend, Some(name), &figure)));
        }
        println!("{}", line.trim_end());
    }
    for m in measured {
        for (name, f) in &m.reports {
            if let Err(e) = f {
                println!("    {} {name}: error: {e}", m.backend);
            }
        }
        if let Err(e) = &m.list {
            println!("    {} build list: error: {e}", m.backend);
        }
    }
    println!();
    for m in measured.iter().filter(|m| m.backend != "files") {
        let mut over: Vec<String> = Vec::new();
        if m.list.as_ref().is_ok_and(|d| stats::ms(*d) >= target(m.backend, None)) {
            over.push("build list".into());
        }
        for (name, f) in &m.reports {
            if let Ok((d, _)) = f
                && stats::ms(*d) >= target(m.backend, Some(*name))
            {
                over.push(format!("{name} ({:.0} ms)", stats::ms(*d)));
            }
        }
        let over = if over.is_empty() { "none".to_owned() } else { over.join(", ") };
        println!("    over target on {}: {over}", m.backend);
    }
    if let Some(files) = measured.iter().find(|m| m.backend == "files") {
        // Every call on the file store reads every build's document, so all its figures
        // cost about the same and grow linearly with the builds. The cost per build is
        // taken from the median over the reports (one figure slowed by a busy machine
        // does not move it), and the limits follow from the targets.
        let mut times: Vec<Duration> =
            files.reports.iter().filter_map(|(_, f)| f.as_ref().ok().map(|(d, _)| *d)).collect();
        let per_build = stats::ms(stats::median(&mut times)) / (files.builds.max(1) as f64);
        if per_build > 0.0 {
            let upto = |ms: f64| ms / per_build;
            println!(
                "    files: every call reads every build's document: about {:.0} ms per 1,000 builds (median over the reports), \
                 growing linearly, so reports stay under 100 ms up to about {:.0} builds, overview and matrix under 50 ms \
                 up to about {:.0}, build list under 20 ms up to about {:.0}",
                per_build * 1000.0,
                upto(100.0),
                upto(50.0),
                upto(20.0)
            );
        }
    }
    println!(
        "    peak memory of this process after each backend: {}",
        measured
            .iter()
            .map(|m| format!("{} {:.0} MiB", m.backend, m.max_rss_kib as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
