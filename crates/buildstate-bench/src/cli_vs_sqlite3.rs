//! (b) and (c): the CLI end to end against the `sqlite3` tool, and the CLI's peak memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use buildstate_core::Build;
use nix::sys::resource::{UsageWho, getrusage};

use crate::fixture;
use crate::stats::median;

pub struct Figures {
    pub samples: usize,
    pub cli: Duration,
    pub sqlite3: Duration,
    pub memory_runs: usize,
    pub cli_max_rss_kib: i64,
}

pub fn run(rt: &tokio::runtime::Runtime, dir: &Path, cli: &Path, quick: bool) -> Result<Figures, String> {
    let samples = if quick { 5 } else { 60 };
    let memory_runs = if quick { 2 } else { 10 };
    let db = dir.join("cli.db");
    // Fresh builds at state 0: each CLI run completes milestone 0 of its own build, each
    // sqlite3 run does the same update and insert on another.
    let builds = rt.block_on(fixture::builds(&db, 2 * samples + memory_runs))?;
    let (for_memory, rest) = builds.split_at(memory_runs);
    let (for_cli, for_sqlite3) = rest.split_at(samples);

    let cli_max_rss_kib = memory_probe(cli, &db, for_memory)?;

    // Alternate the two so that drift on a noisy machine hits both alike.
    let mut cli_times = Vec::with_capacity(samples);
    let mut sqlite_times = Vec::with_capacity(samples);
    for (a, b) in for_cli.iter().zip(for_sqlite3) {
        cli_times.push(run_cli(cli, &db, a)?);
        sqlite_times.push(run_sqlite3(&db, b)?);
    }
    Ok(Figures {
        samples,
        cli: median(&mut cli_times),
        sqlite3: median(&mut sqlite_times),
        memory_runs,
        cli_max_rss_kib,
    })
}

/// RUSAGE_CHILDREN reports the largest descendant a process ever reaped — including
/// those reaped before an `exec` (a `cargo build` in the script that started us). So a
/// fresh child of ours (`buildstate-bench --memory-probe …`) runs the CLI and reports
/// its own figure.
fn memory_probe(cli: &Path, db: &Path, builds: &[Build]) -> Result<i64, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let out = Command::new(me)
        .arg("--memory-probe")
        .arg(cli)
        .arg(db)
        .args(builds.iter().map(|b| b.number.to_string()))
        .output()
        .map_err(|e| format!("cannot run the memory probe: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("the memory probe failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    text.trim().parse().map_err(|_| format!("the memory probe printed `{}`", text.trim()))
}

/// The probe's side: run `state complete` for each build, then print the largest RSS
/// (KiB) of those children.
pub fn probe(args: &[String]) -> Result<(), String> {
    let [cli, db, numbers @ ..] = args else {
        return Err("usage: --memory-probe CLI DB BUILD…".into());
    };
    for number in numbers {
        let status = Command::new(cli)
            .arg("--db")
            .arg(db)
            .args(["state", "complete", number, "0"])
            .env("BUILDSTATE_ACTOR", "bench")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {cli}: {e}"))?;
        if !status.success() {
            return Err(format!("buildstate state complete exited with {status}"));
        }
    }
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| format!("getrusage failed: {e}"))?.max_rss();
    println!("{rss}");
    Ok(())
}

fn run_cli(cli: &Path, db: &Path, build: &Build) -> Result<Duration, String> {
    let start = Instant::now();
    let status = Command::new(cli)
        .arg("--db")
        .arg(db)
        .args(["state", "complete", build.number.as_str(), "0"])
        .env("BUILDSTATE_ACTOR", "bench")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    let took = start.elapsed();
    if !status.success() {
        return Err(format!("buildstate state complete exited with {status}"));
    }
    Ok(took)
}

fn run_sqlite3(db: &Path, build: &Build) -> Result<Duration, String> {
    let script = fixture::sqlite3_complete_script(build);
    let start = Instant::now();
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(&script)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run sqlite3 (install it: apt-get install sqlite3): {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(took)
}
