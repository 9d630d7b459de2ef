//! `workers`: every fleet worker seen in the last 24 hours — running a build, idle,
//! stale (silent for three of its heartbeats: killed, or cut off from the store) or
//! exited — from the store's worker registry, and any other runner holding a lease
//! (`buildstate run`, `exec`), which is not in the registry.

use std::collections::BTreeMap;
use std::time::Duration;

use buildstate_core::{BuildId, Lease, WorkerRecord, WorkerState};
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::output;

/// How far back `workers` looks.
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// One row: a registered worker, or a runner known only by its leases.
#[derive(Debug, Serialize)]
struct WorkerView {
    worker: String,
    host: String,
    pid: u32,
    /// `worker` (in the registry) or `runner` (a `run` or `exec`, seen by its leases).
    kind: &'static str,
    /// `running`, `idle`, `stale` or `exited`.
    state: &'static str,
    /// The build it runs (the registry's, or its lease's), by number.
    build: Option<String>,
    build_id: Option<String>,
    /// Every build whose unexpired lease it holds.
    builds: Vec<String>,
    started_at: Timestamp,
    last_seen: Timestamp,
    /// Seconds since `last_seen`, by the store's clock.
    last_seen_secs: u64,
    /// Its heartbeat; stale after three of them without one.
    heartbeat_ms: Option<u64>,
    stale: bool,
    exited_at: Option<Timestamp>,
}

pub async fn run(ctx: &Ctx) -> Result<(), CliError> {
    let registry = ctx.store.workers(WINDOW).await?;
    let now = registry.now;
    let leases: Vec<Lease> = ctx.store.leases().await?.into_iter().filter(|l| !l.is_expired(now)).collect();
    let mut numbers = Numbers { ctx, known: BTreeMap::new() };
    let mut rows = Vec::new();
    for w in &registry.workers {
        rows.push(registered(w, &leases, now, &mut numbers).await);
    }
    // Holders of leases that are not registered workers, one row per process.
    let mut runners: BTreeMap<(String, String, u32), Vec<&Lease>> = BTreeMap::new();
    for l in &leases {
        let registered =
            registry.workers.iter().any(|w| w.name == l.owner && w.host == l.host && w.pid == l.pid);
        if !registered {
            runners.entry((l.owner.clone(), l.host.clone(), l.pid)).or_default().push(l);
        }
    }
    for ((owner, host, pid), held) in runners {
        let mut builds = Vec::new();
        for l in &held {
            builds.push(numbers.of(l.build_id).await);
        }
        let last_seen = held.iter().map(|l| l.renewed_at).max().unwrap_or(now);
        rows.push(WorkerView {
            worker: owner,
            host,
            pid,
            kind: "runner",
            state: "running",
            build: builds.first().cloned(),
            build_id: held.first().map(|l| l.build_id.to_string()),
            builds,
            started_at: held.iter().map(|l| l.acquired_at).min().unwrap_or(now),
            last_seen,
            last_seen_secs: age_secs(now, last_seen),
            heartbeat_ms: None,
            stale: false,
            exited_at: None,
        });
    }
    rows.sort_by(|a, b| (&a.worker, &a.host, a.pid).cmp(&(&b.worker, &b.host, b.pid)));
    if ctx.json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        return output::line("no worker seen in the last 24 hours");
    }
    let mut t = output::table(&["WORKER", "HOST", "PID", "RUNNING", "LAST SEEN", "STATE"]);
    for r in &rows {
        let running = match (r.state, &r.build) {
            ("exited", _) => "-".to_owned(),
            (_, Some(number)) => number.clone(),
            (_, None) => "idle".to_owned(),
        };
        let state = match (r.kind, r.state) {
            ("runner", _) => "live (runner)",
            (_, "stale") => "stale",
            (_, "exited") => "exited",
            _ => "live",
        };
        t.add_row(vec![
            output::cell(&r.worker, 40),
            output::cell(&r.host, 30),
            r.pid.to_string(),
            running,
            format!("{} ago", output::duration(r.last_seen_secs * 1000)),
            state.to_owned(),
        ]);
    }
    output::print_table(&t)
}

async fn registered(
    w: &WorkerRecord,
    leases: &[Lease],
    now: Timestamp,
    numbers: &mut Numbers<'_>,
) -> WorkerView {
    let mut builds = Vec::new();
    for l in leases.iter().filter(|l| l.owner == w.name && l.host == w.host && l.pid == w.pid) {
        builds.push(numbers.of(l.build_id).await);
    }
    let state = w.state(now);
    let build = match w.build {
        Some(id) if state != WorkerState::Exited => Some(numbers.of(id).await),
        _ => None,
    };
    WorkerView {
        worker: w.name.clone(),
        host: w.host.clone(),
        pid: w.pid,
        kind: "worker",
        state: match state {
            WorkerState::Running => "running",
            WorkerState::Idle => "idle",
            WorkerState::Stale => "stale",
            WorkerState::Exited => "exited",
        },
        build,
        build_id: w.build.map(|id| id.to_string()),
        builds,
        started_at: w.started_at,
        last_seen: w.last_seen,
        last_seen_secs: age_secs(now, w.last_seen),
        heartbeat_ms: Some(w.heartbeat_ms),
        stale: state == WorkerState::Stale,
        exited_at: w.exited_at,
    }
}

fn age_secs(now: Timestamp, then: Timestamp) -> u64 {
    u64::try_from(now.duration_since(then).as_secs()).unwrap_or(0)
}

/// Build numbers by id, each read once (a fleet runs few builds at a time).
struct Numbers<'c> {
    ctx: &'c Ctx,
    known: BTreeMap<BuildId, String>,
}

impl Numbers<'_> {
    /// The build's number; its id when the build is gone (deleted, or replaced by an
    /// import under another id).
    async fn of(&mut self, id: BuildId) -> String {
        if let Some(n) = self.known.get(&id) {
            return n.clone();
        }
        let n = self.ctx.store.build(id).await.map_or_else(|_| id.to_string(), |b| b.number.to_string());
        self.known.insert(id, n.clone());
        n
    }
}
