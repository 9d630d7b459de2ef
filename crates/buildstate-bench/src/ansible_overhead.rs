//! (j) What the Ansible callback adds to a playbook: a generated 200-task playbook on
//! localhost (four plays of 50 `debug` tasks, each play mapped to a milestone) run with
//! the buildstate callback recording a fresh build and without it, alternating, in the
//! same run (target: overhead ≤ 10 %).
//!
//! `debug` tasks run in the controller without a module round trip, so the playbook is
//! as fast as a 200-task playbook gets and any fixed cost of the callback (loading it,
//! the `buildstate ansible record` calls at play boundaries) weighs the most: the
//! figure is the worst case, not a typical playbook.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixture;
use crate::stats::median;

pub const TASKS: usize = 200;
const PLAYS: usize = 4;
const INVENTORY: &str = "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n";

pub struct Figures {
    pub samples: usize,
    pub with: Duration,
    pub without: Duration,
}

impl Figures {
    /// Added time, as a percentage of the run without the callback.
    pub fn overhead_pct(&self) -> f64 {
        (self.with.as_secs_f64() / self.without.as_secs_f64() - 1.0) * 100.0
    }
}

pub fn run(rt: &tokio::runtime::Runtime, dir: &Path, cli: &Path, quick: bool) -> Result<Figures, String> {
    let samples = if quick { 2 } else { 7 };
    let db = dir.join("ansible.db");
    // One fresh build per recorded run, so that every run records its four milestones.
    let builds = rt.block_on(fixture::builds(&db, samples + 1))?;
    let plugins = dir.join("ansible-plugins");
    let out = Command::new(cli)
        .args(["ansible", "callback-dir", "--dir"])
        .arg(&plugins)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    if !out.status.success() {
        return Err(format!(
            "buildstate ansible callback-dir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(dir.join("inventory"), INVENTORY)
        .map_err(|e| format!("cannot write the inventory: {e}"))?;
    std::fs::write(dir.join("bench.yml"), playbook())
        .map_err(|e| format!("cannot write the playbook: {e}"))?;

    // A warm-up of each, unmeasured: Python's bytecode caches and the page cache.
    playbook_run(dir, cli, &db, &plugins, None)?;
    playbook_run(dir, cli, &db, &plugins, Some(builds[samples].number.as_str()))?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for b in builds.iter().take(samples) {
        without.push(playbook_run(dir, cli, &db, &plugins, None)?);
        with.push(playbook_run(dir, cli, &db, &plugins, Some(b.number.as_str()))?);
    }
    Ok(Figures { samples, with: median(&mut with), without: median(&mut without) })
}

fn playbook() -> String {
    let per_play = TASKS / PLAYS;
    let mut yaml = String::new();
    for p in 0..PLAYS {
        let milestone = 10 + p * 5;
        yaml.push_str(&format!(
            "- name: {milestone} bench play {p}\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        ));
        for t in 0..per_play {
            yaml.push_str(&format!("    - debug: msg=\"task {t} of play {p}\"\n"));
        }
    }
    yaml
}

/// One `ansible-playbook` run; with a build, the callback records it in `db`.
fn playbook_run(
    dir: &Path,
    cli: &Path,
    db: &Path,
    plugins: &Path,
    build: Option<&str>,
) -> Result<Duration, String> {
    let mut c = Command::new("ansible-playbook");
    c.current_dir(dir)
        .args(["-i", "inventory", "bench.yml"])
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_HOME", dir.join("ansible-home"))
        .stdout(Stdio::null());
    if let Some(b) = build {
        c.env("ANSIBLE_CALLBACK_PLUGINS", plugins)
            .env("ANSIBLE_CALLBACKS_ENABLED", "buildstate")
            .env("BUILDSTATE_BUILD", b)
            .env("BUILDSTATE_BIN", cli)
            .env("BUILDSTATE_DB", db)
            .env("BUILDSTATE_ACTOR", "bench")
            .env("BUILDSTATE_ANSIBLE_SPOOL", dir.join(format!("spool-{b}.jsonl")));
    }
    let start = Instant::now();
    let out = c.output().map_err(|e| {
        format!("cannot run ansible-playbook: {e} (scripts/setup.sh installs it: install_packer_ansible)")
    })?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "ansible-playbook exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if build.is_some() && String::from_utf8_lossy(&out.stderr).contains("buildstate is unavailable") {
        return Err(format!("the callback could not record: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(took)
}
