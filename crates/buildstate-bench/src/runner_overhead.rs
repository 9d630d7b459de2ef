//! (d) The runner's overhead per milestone: `buildstate run` on a 21-milestone pipeline
//! whose steps are `true`, against spawning `true` 21 times directly, in the same run.
//! The difference, divided by 21, is what buildstate adds to each milestone: recording
//! the attempt (two transitions), the lease, the log file and the process group.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use buildstate_core::StateCatalog;

use crate::fixture;
use crate::stats::median;

pub struct Figures {
    pub samples: usize,
    pub milestones: usize,
    pub run: Duration,
    pub spawn: Duration,
}

impl Figures {
    /// Added time per milestone, in milliseconds (never below zero).
    pub fn overhead_ms(&self) -> f64 {
        (self.run.as_secs_f64() - self.spawn.as_secs_f64()).max(0.0) * 1000.0 / self.milestones as f64
    }
}

pub fn run(rt: &tokio::runtime::Runtime, dir: &Path, cli: &Path, quick: bool) -> Result<Figures, String> {
    let samples = if quick { 2 } else { 15 };
    let db = dir.join("runner.db");
    rt.block_on(fixture::builds(&db, 0))?;
    let pipeline = dir.join("overhead.yaml");
    let catalog = StateCatalog::default_catalog();
    let mut yaml = String::from(
        "name: overhead\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6]\n  image: [base]\nstates:\n",
    );
    for code in catalog.codes() {
        yaml.push_str(&format!("  {code}: {{run: [true]}}\n"));
    }
    std::fs::write(&pipeline, yaml).map_err(|e| format!("cannot write the pipeline: {e}"))?;
    let milestones = catalog.milestones().len();

    let (mut runs, mut spawns) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        runs.push(run_pipeline(cli, &db, &pipeline, dir)?);
        spawns.push(spawn_true(milestones)?);
    }
    Ok(Figures { samples, milestones, run: median(&mut runs), spawn: median(&mut spawns) })
}

fn run_pipeline(cli: &Path, db: &Path, pipeline: &Path, dir: &Path) -> Result<Duration, String> {
    let start = Instant::now();
    let status = Command::new(cli)
        .arg("--db")
        .arg(db)
        .arg("run")
        .arg(pipeline)
        .arg("--new")
        .arg("--logs-dir")
        .arg(dir.join("logs"))
        .env("BUILDSTATE_ACTOR", "bench")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    let took = start.elapsed();
    if !status.success() {
        return Err(format!("buildstate run exited with {status}"));
    }
    Ok(took)
}

/// The baseline: the same 21 processes, one after another, with nothing recorded.
fn spawn_true(n: usize) -> Result<Duration, String> {
    let start = Instant::now();
    for _ in 0..n {
        let status = Command::new("true").status().map_err(|e| format!("cannot run true: {e}"))?;
        if !status.success() {
            return Err("`true` failed".into());
        }
    }
    Ok(start.elapsed())
}
