//! (i) Transitions through the HTTP API (`buildstate serve`, the real binary, over
//! SQLite) with 1, 16 and 64 concurrent clients on distinct builds, against the store
//! in this process at the same concurrency, in the same run; each transition's latency
//! through the API (p50, p99); and the server's peak resident memory under that load
//! (its `VmHWM`). Targets: ≥ 0.5× the in-process rate at 16 clients, p99 < 20 ms at 16
//! clients, peak RSS < 100 MB.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{BuildId, Command, Name, StateCatalog};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Guard, Store};

use crate::fixture;

/// The concurrencies measured.
pub const CLIENTS: [usize; 3] = [1, 16, 64];

pub struct Row {
    pub clients: usize,
    pub http_per_sec: f64,
    pub local_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub struct Measured {
    pub rows: Vec<Row>,
    /// The server's peak resident set over the whole run.
    pub server_peak_rss_kib: u64,
}

/// The server process, stopped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(cli: &Path, db: &Path) -> Result<Server, String> {
        let mut child = std::process::Command::new(cli)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("BUILDSTATE_DB", db)
            .env("XDG_CONFIG_HOME", "/nonexistent/buildstate-bench")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", cli.display()))?;
        let stdout = child.stdout.take().ok_or("the server's stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("the server's address: {e}"))?;
        let url = line.trim().to_owned();
        if !url.starts_with("http://") {
            let _ = child.kill();
            return Err(format!("the server printed no address (got {url:?})"));
        }
        Ok(Server { child, url })
    }

    /// `VmHWM` of the server: the most it was resident at any time.
    fn peak_rss_kib(&self) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("the server's memory: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmHWM in the server's status".to_owned())
    }
}

pub fn run(dir: &Path, cli: &Path, quick: bool) -> Result<Measured, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let builds_per_client = if quick { 1 } else { 3 };
    let db = dir.join("http.db");
    let token = rt.block_on(async {
        fixture::builds(&db, 0).await?;
        let store = SqliteStore::open(&db).map_err(|e| e.to_string())?;
        let (record, secret) = buildstate_store::tokens::issue(
            Name::new("bench").map_err(|e| e.to_string())?,
            "read,write".parse().map_err(|e: buildstate_core::TokenError| e.to_string())?,
            None,
            buildstate_store::now(),
        )
        .map_err(|e| e.to_string())?;
        store.create_token(&record).await.map_err(|e| e.to_string())?;
        Ok::<String, String>(secret.reveal())
    })?;
    let server = Server::start(cli, &db)?;
    let mut rows = Vec::new();
    for clients in CLIENTS {
        // Through the API: one client (connection pool) per concurrent writer, as many
        // CI workers would be.
        let http: Vec<Arc<dyn Store>> = (0..clients)
            .map(|_| {
                buildstate_client::HttpStore::new(&server.url, Some(&token))
                    .map(|s| Arc::new(s) as Arc<dyn Store>)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let (http_rate, mut latencies) = rt.block_on(measure(&http, builds_per_client))?;
        // In this process: one store handle (connection) per writer, on the same file.
        let local: Vec<Arc<dyn Store>> = (0..clients)
            .map(|_| SqliteStore::open(&db).map(|s| Arc::new(s) as Arc<dyn Store>).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let (local_rate, _) = rt.block_on(measure(&local, builds_per_client))?;
        latencies.sort_unstable();
        rows.push(Row {
            clients,
            http_per_sec: http_rate,
            local_per_sec: local_rate,
            p50: percentile(&latencies, 50),
            p99: percentile(&latencies, 99),
        });
    }
    Ok(Measured { rows, server_peak_rss_kib: server.peak_rss_kib()? })
}

/// Nearest rank.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Every handle drives its own builds through all 21 milestones (start, complete);
/// transitions per second over the whole, and each transition's latency.
async fn measure(handles: &[Arc<dyn Store>], per_client: usize) -> Result<(f64, Vec<Duration>), String> {
    let own = fixture::builds_per_handle(handles, per_client).await?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (h, ids) in handles.iter().cloned().zip(own) {
        tasks.spawn(async move {
            let mut took = Vec::new();
            for id in ids {
                drive(h.as_ref(), id, &mut took).await?;
            }
            Ok::<Vec<Duration>, String>(took)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.map_err(|e| e.to_string())??);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, all))
}

async fn drive(store: &dyn Store, id: BuildId, took: &mut Vec<Duration>) -> Result<(), String> {
    for state in StateCatalog::default_catalog().codes() {
        for cmd in [
            Command::Start { state, actor: "bench".into(), log: None, force: false },
            Command::Complete { state, actor: "bench".into(), exit_code: Some(0), log: None },
        ] {
            let t = Instant::now();
            store.apply(id, &cmd, Guard::none()).await.map_err(|e| e.to_string())?;
            took.push(t.elapsed());
        }
    }
    Ok(())
}
