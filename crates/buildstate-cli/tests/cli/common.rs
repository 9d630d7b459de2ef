//! The fixture: a temp dir with a database, and helpers that run the binary and check
//! how it ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use tempfile::TempDir;

/// CI variables the binary reads (the CI job URL); removed so that tests behave the same
/// inside CI.
const CI_VARS: &[&str] = &[
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "CI_JOB_URL",
    "BUILD_URL",
    "ATC_EXTERNAL_URL",
    "BUILD_TEAM_NAME",
    "BUILD_PIPELINE_NAME",
    "BUILD_JOB_NAME",
    "BUILD_NAME",
    "BUILD_ID",
];

/// Where the binary looks for its config file in tests: nowhere that exists, so that a
/// developer's own `~/.config/buildstate/config.toml` never changes what a test sees.
/// Tests of the config file point `XDG_CONFIG_HOME` or `--config` at their own.
pub const NO_CONFIG_DIR: &str = "/nonexistent/buildstate-tests/config";

/// Whether a variable of the test process must not reach the binary: the CI variables,
/// and every `BUILDSTATE_*` whatever its name — the settings (`BUILDSTATE_DB`, `_SYNC`,
/// `_CONFIG`, `_LEASE_TTL`, …) and what a runner gives its steps (`_LEASE_TOKEN`,
/// `_BUILD`, …) — so that a suite run with a developer's `BUILDSTATE_SYNC` exported, or
/// inside `buildstate exec`, behaves as it does in CI, including for variables added
/// after this list was written.
pub fn leaks(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("BUILDSTATE_") || CI_VARS.contains(&name.as_ref()) || name == "XDG_CONFIG_HOME"
}

/// `parent` without what [`leaks`], and with [`NO_CONFIG_DIR`]: the environment every
/// test's binary starts from.
pub fn clean_env(
    parent: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<_> = parent.into_iter().filter(|(k, _)| !leaks(k)).collect();
    env.push(("XDG_CONFIG_HOME".into(), NO_CONFIG_DIR.into()));
    env
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_buildstate")
}

/// A fresh store in a temp dir, removed on drop; with [`Env::served`], the same store
/// behind a real `buildstate serve`, which every command of the fixture goes through.
pub struct Env {
    pub dir: TempDir,
    pub db: PathBuf,
    pub served: Option<Served>,
}

/// A `buildstate serve` of a fixture's store, stopped on drop.
pub struct Served {
    pub url: String,
    /// A read, write and admin token.
    pub token: String,
    /// Kept to stop it with the fixture.
    pub process: Runner,
}

/// How a run ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// How the run ended, as one text for a snapshot: the exit code, then stdout and
    /// stderr when not empty. A snapshot of what users read pins how the command ended
    /// too: the same words with another exit code are another interface.
    pub fn transcript(&self) -> String {
        let mut t = format!("exit code: {}\n", self.code);
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.is_empty() {
                t.push_str(&format!("--- {name}\n{text}"));
                if !text.ends_with('\n') {
                    t.push('\n');
                }
            }
        }
        t
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("buildstate.db");
        Env { dir, db, served: None }
    }

    /// A fixture whose commands work through a server (`BUILDSTATE_SERVER` and
    /// `BUILDSTATE_TOKEN`, nothing else): the real binary serving a fresh store.
    pub fn served() -> Self {
        let mut env = Env::new();
        env.ok(&["init"]);
        let token =
            env.ok(&["token", "create", "--name", "cli", "--scopes", "read,write,admin"]).trim().to_owned();
        let process = env.spawn("server", &["serve", "--listen", "127.0.0.1:0"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let out = std::fs::read_to_string(&process.stdout).unwrap_or_default();
            if let Some(url) = out.lines().next() {
                break url.trim().to_owned();
            }
            assert!(Instant::now() < deadline, "the server printed no address: {}", process.output());
            std::thread::sleep(Duration::from_millis(20));
        };
        env.served = Some(Served { url, token, process });
        env
    }

    /// Where the store is: `BUILDSTATE_DB`, or the server and its token.
    fn point(&self, set: &mut dyn FnMut(&str, &std::ffi::OsStr)) {
        match &self.served {
            None => set("BUILDSTATE_DB", self.db.as_os_str()),
            Some(s) => {
                set("BUILDSTATE_SERVER", s.url.as_ref());
                set("BUILDSTATE_TOKEN", s.token.as_ref());
                // This machine's logs of runs through the server, inside the fixture.
                set("XDG_DATA_HOME", self.dir.path().join("client-data").as_os_str());
            }
        }
    }

    /// A fixture on another store (`postgres://…`, `file://…`), with its own temp dir.
    pub fn with_db(db: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Env { dir, db: PathBuf::from(db), served: None }
    }

    /// The binary with a clean environment pointing at this store.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = bare_cmd();
        self.point(&mut |k, v| {
            c.env(k, v);
        });
        c.env("BUILDSTATE_ACTOR", "tester");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd().args(args).output().expect("run buildstate").into()
    }

    pub fn run_stdin(&self, args: &[&str], stdin: impl Into<Vec<u8>>) -> Run {
        self.cmd().args(args).write_stdin(stdin.into()).output().expect("run buildstate").into()
    }

    /// Runs and expects exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "buildstate {args:?} failed: {r:?}");
        r.stdout
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("buildstate {args:?} --json: {e}: {out}"))
    }

    /// Runs and expects `code` with a proper error; returns the error line.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let r = self.run(args);
        expect_error(&r, code, &format!("{args:?}"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The catalog the tests use: aws-commercial, rhel-9.6, base.
    pub fn with_catalog(self) -> Self {
        self.ok(&["platform", "add", "aws-commercial", "--provider", "aws", "--region", "us-east-1"]);
        self.ok(&["os", "add", "rhel-9.6", "--family", "rhel", "--major", "9", "--minor", "6"]);
        self.ok(&["image-type", "add", "base", "--display-name", "Base"]);
        self
    }

    /// Creates a build with a fixed number.
    pub fn build(&self, number: &str) -> String {
        let out = self.build_with("base", &["--number", number]);
        assert_eq!(out, number);
        number.to_owned()
    }

    /// Creates a build of aws-commercial/rhel-9.6/`image` with `extra` flags
    /// (`--number`, `--catalog`, …); returns its number.
    pub fn build_with(&self, image: &str, extra: &[&str]) -> String {
        let mut args =
            vec!["build", "create", "--platform", "aws-commercial", "--os", "rhel-9.6", "--image", image];
        args.extend_from_slice(extra);
        self.ok(&args).trim().to_owned()
    }

    /// Completes milestones from 0 until the build is at `code`.
    pub fn advance_to(&self, build: &str, code: u8) {
        self.advance_to_from(build, 0, code);
    }

    /// Completes milestones `from`, `from + 5`, … below `to`.
    pub fn advance_to_from(&self, build: &str, from: u8, to: u8) {
        let mut at = from;
        while at < to {
            self.ok(&["state", "complete", build, &at.to_string()]);
            at += 5;
        }
    }

    pub fn export(&self, build: &str) -> String {
        self.ok(&["export", build])
    }

    /// Runs a command that must fail with `code`, and checks that the build exports
    /// byte-for-byte the same afterwards. Returns the error line.
    pub fn fails_unchanged(&self, build: &str, args: &[&str], code: i32) -> String {
        let before = self.export(build);
        let err = self.fails(args, code);
        assert_eq!(before, self.export(build), "{args:?} changed build {build}");
        err
    }

    pub fn fails_unchanged_stdin(&self, build: &str, args: &[&str], stdin: &[u8], code: i32) -> String {
        let before = self.export(build);
        let r = self.run_stdin(args, stdin);
        let err = expect_error(&r, code, &format!("{args:?}"));
        assert_eq!(before, self.export(build), "{args:?} changed build {build}");
        err
    }
}

/// The binary in [`clean_env`] of this process's environment.
pub fn bare_cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(bin());
    c.env_clear().envs(clean_env(std::env::vars_os()));
    c
}

/// [`bare_cmd`] as a `std::process::Command`, for processes a test runs in the background.
pub fn bare_std_cmd() -> std::process::Command {
    let mut c = std::process::Command::new(bin());
    c.env_clear().envs(clean_env(std::env::vars_os()));
    c
}

/// Checks an error exit: the code, nothing on stdout, and on stderr one `error:` line
/// optionally followed by one `hint:` line. Returns the error line.
pub fn expect_error(r: &Run, code: i32, what: &str) -> String {
    assert_eq!(r.code, code, "{what}: expected exit {code}: {r:?}");
    assert!(r.stdout.is_empty(), "{what}: stdout should be empty on error: {r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        matches!(lines.as_slice(), [e] if e.starts_with("error: "))
            || matches!(lines.as_slice(), [e, h] if e.starts_with("error: ") && h.starts_with("hint: ")),
        "{what}: expected `error: …` (+ `hint: …`) on stderr, got {:?}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what}: panic: {}", r.stderr);
    lines[0].to_owned()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read file")
}

// ---------------------------------------------------------------------------------------
// Pipeline runs: the runner tests (`runner.rs`, `runner_faults.rs`, `exec.rs`).

/// The 21 milestones of the default catalog.
pub fn default_codes() -> impl Iterator<Item = u8> {
    (0..=100).step_by(5)
}

/// The step of the test pipelines (`sh step.sh`, run in the pipeline's directory). It
/// appends `BUILD STATE ATTEMPT start` and `… done` to `side.log` (short appends are
/// atomic, so parallel builds and runners can share the file), sleeps `$STEP_SLEEP`
/// seconds if set, hangs with a grandchild (its pid in `grandchild.pid`) while
/// `hang-STATE` exists — ignoring SIGINT and SIGTERM, grandchild included, if `stubborn`
/// exists — and exits 2 while `fail-IMAGE-STATE` exists.
pub const STEP_SH: &str = r#"at="$BUILDSTATE_BUILD $BUILDSTATE_STATE $BUILDSTATE_ATTEMPT"
echo "$at start" >> side.log
if [ -n "$STEP_SLEEP" ]; then sleep "$STEP_SLEEP"; fi
if [ -e "hang-$BUILDSTATE_STATE" ]; then
  if [ -e stubborn ]; then trap '' INT TERM; fi
  sleep 300 &
  echo $! > grandchild.tmp && mv grandchild.tmp grandchild.pid
  sleep 300
fi
if [ -e "fail-$BUILDSTATE_IMAGE-$BUILDSTATE_STATE" ]; then
  echo "failing at $BUILDSTATE_STATE" >&2
  exit 2
fi
echo "$at done" >> side.log
"#;

/// A pipeline named `name` over `aws-commercial × rhel-9.6 × images` whose 21
/// milestones all run [`STEP_SH`], with `env` as `defaults.env`.
pub fn step_pipeline(name: &str, images: &[&str], env: &[(&str, &str)]) -> String {
    let mut y = format!(
        "name: {name}\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6]\n  image: [{}]\n",
        images.join(", ")
    );
    if !env.is_empty() {
        y.push_str("defaults:\n  env:\n");
        for (k, v) in env {
            y.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    y.push_str("states:\n");
    for code in default_codes() {
        y.push_str(&format!("  {code}: {{run: sh step.sh}}\n"));
    }
    y
}

/// One line of `side.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub build: String,
    pub state: u8,
    pub attempt: u32,
    pub done: bool,
}

impl Mark {
    pub fn start(build: &str, state: u8, attempt: u32) -> Mark {
        Mark { build: build.to_owned(), state, attempt, done: false }
    }

    pub fn done(build: &str, state: u8, attempt: u32) -> Mark {
        Mark { build: build.to_owned(), state, attempt, done: true }
    }
}

/// A `buildstate run` in the background, its output going to files in the fixture's
/// directory. Killed with SIGKILL if the test ends (or panics) before it does.
pub struct Runner {
    child: Child,
    pub label: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Runner {
    /// A process started by hand (with an environment of its own), watched like one
    /// [`Env::spawn`] started.
    pub fn new(child: Child, label: &str, stdout: PathBuf, stderr: PathBuf) -> Runner {
        Runner { child, label: label.to_owned(), stdout, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`INT`, `TERM`, …) to the runner process alone, as a supervisor
    /// would: its steps are in process groups of their own.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} {} failed", self.pid());
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the runner");
        self.child.wait().expect("reap the runner");
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("poll the runner").is_none()
    }

    /// Waits for the exit code, at most `limit` (a generous bound: a hang is a failure).
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the runner") {
                return status.code().unwrap_or_else(|| panic!("{} died by a signal: {status}", self.label));
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {limit:?}: {}",
                self.label,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it printed so far, for assertion messages.
    pub fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!("{}: stdout:\n{}\nstderr:\n{}", self.label, read(&self.stdout), read(&self.stderr))
    }

    pub fn json(&self) -> Value {
        let out = std::fs::read_to_string(&self.stdout).expect("read the runner's stdout");
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{}: --json: {e}: {}", self.label, self.output()))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The flags of every test run, unless the test gives its own: the shortest lease the
/// runner accepts, so that a killed runner's build is taken over quickly, and a short
/// grace.
pub const RUN_FLAGS: &[(&str, &str)] = &[("--lease-ttl", "3s"), ("--grace", "1s")];

/// `run PIPELINE --json`, [`RUN_FLAGS`] that `args` does not set, then `args`.
fn run_args<'a>(pipeline: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["run", pipeline.to_str().expect("utf-8 path"), "--json"];
    for (flag, value) in RUN_FLAGS {
        if !args.contains(flag) {
            all.extend([*flag, *value]);
        }
    }
    all.extend_from_slice(args);
    all
}

impl Env {
    /// Adds image types beside the fixture's `base`.
    pub fn with_images(self, names: &[&str]) -> Self {
        for name in names {
            self.ok(&["image-type", "add", name, "--display-name", name]);
        }
        self
    }

    /// Writes `text` to `name` in the fixture's directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a file");
        path
    }

    /// Writes [`STEP_SH`] and the pipeline `yaml` as `NAME.yml`; returns the pipeline's path.
    pub fn pipeline(&self, name: &str, yaml: &str) -> PathBuf {
        self.write("step.sh", STEP_SH);
        self.write(&format!("{name}.yml"), yaml)
    }

    /// `run PIPELINE ARGS…` (see [`RUN_FLAGS`]), in the foreground: the exit code, the
    /// JSON summary and the whole output.
    pub fn run_pipeline(&self, pipeline: &Path, args: &[&str]) -> (i32, Value, Run) {
        let r = self.run(&run_args(pipeline, args));
        assert!(!r.stderr.contains("panicked"), "run panicked: {r:?}");
        let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("run --json: {e}: {r:?}"));
        (r.code, v, r)
    }

    /// [`Env::cmd`] as a `std::process::Command`, for processes the test does not wait
    /// for at once.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = bare_std_cmd();
        self.point(&mut |k, v| {
            c.env(k, v);
        });
        c.env("BUILDSTATE_ACTOR", "tester");
        c
    }

    /// `run PIPELINE ARGS…` (see [`RUN_FLAGS`]), in the background.
    pub fn spawn_run(&self, label: &str, pipeline: &Path, args: &[&str]) -> Runner {
        self.spawn(label, &run_args(pipeline, args))
    }

    /// `buildstate ARGS…` in the background, acting as `label`, its output going to
    /// `LABEL.stdout` and `LABEL.stderr`.
    pub fn spawn(&self, label: &str, args: &[&str]) -> Runner {
        let stdout = self.path(&format!("{label}.stdout"));
        let stderr = self.path(&format!("{label}.stderr"));
        let mut c = self.std_cmd();
        c.env("BUILDSTATE_ACTOR", label)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("create stderr file"));
        let child = c.spawn().expect("start buildstate");
        Runner { child, label: label.to_owned(), stdout, stderr }
    }

    /// `history REF --json`.
    pub fn history(&self, build: &str) -> Vec<Value> {
        match self.json(&["history", build]) {
            Value::Array(events) => events,
            other => panic!("history --json of {build}: not an array: {other}"),
        }
    }

    /// `failure list --build REF --json`, oldest first.
    pub fn failures(&self, build: &str) -> Vec<Value> {
        match self.json(&["failure", "list", "--build", build]) {
            Value::Array(mut records) => {
                records.sort_by_key(|r| r["number"].as_u64());
                records
            }
            other => panic!("failure list --json of {build}: not an array: {other}"),
        }
    }

    /// `build show REF --json`, the build part.
    pub fn show(&self, build: &str) -> Value {
        self.json(&["build", "show", build])["build"].clone()
    }

    /// The lines of `side.log`, in the order they were written.
    pub fn marks(&self) -> Vec<Mark> {
        let text = std::fs::read_to_string(self.path("side.log")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let parts: Vec<&str> = line.split(' ').collect();
                let [build, state, attempt, what] = parts.as_slice() else {
                    panic!("side.log: malformed line {line:?}");
                };
                Mark {
                    build: (*build).to_owned(),
                    state: state.parse().unwrap_or_else(|_| panic!("side.log: state in {line:?}")),
                    attempt: attempt.parse().unwrap_or_else(|_| panic!("side.log: attempt in {line:?}")),
                    done: match *what {
                        "start" => false,
                        "done" => true,
                        _ => panic!("side.log: malformed line {line:?}"),
                    },
                }
            })
            .collect()
    }

    /// The lines of `side.log` written by `build`.
    pub fn marks_of(&self, build: &str) -> Vec<Mark> {
        self.marks().into_iter().filter(|m| m.build == build).collect()
    }
}

/// The builds of a `run --json` summary, as (build number, summary row).
pub fn summary_builds(summary: &Value) -> Vec<(String, Value)> {
    summary["builds"]
        .as_array()
        .unwrap_or_else(|| panic!("run --json: no builds: {summary}"))
        .iter()
        .map(|b| {
            (b["build"].as_str().unwrap_or_else(|| panic!("no build number: {b}")).to_owned(), b.clone())
        })
        .collect()
}

/// One attempt of a build, from its history: a `started` event and the one event that
/// closed it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub state: u64,
    pub attempt: u64,
    pub started: jiff::Timestamp,
    pub closed: jiff::Timestamp,
    /// `completed` or `failed`.
    pub end: String,
}

pub fn timestamp(event: &Value) -> jiff::Timestamp {
    event["at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("event without a timestamp: {event}"))
}

/// Checks what every history must satisfy when every milestone of the catalog is a
/// step: `seq` runs 1, 2, 3, … without gaps; every `started` event is closed by exactly
/// one `completed` or `failed` event of the same state and attempt before the next
/// attempt starts, and none is left open; no attempt is closed that was not started.
/// Returns the attempts in order.
pub fn attempts(history: &[Value]) -> Vec<Attempt> {
    let mut out: Vec<Attempt> = Vec::new();
    let mut open: Option<(u64, u64, jiff::Timestamp)> = None;
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64 + 1), "history seq has a gap at {e}: {history:#?}");
        let key = (e["state"].as_u64().expect("state"), e["attempt"].as_u64().expect("attempt"));
        match e["kind"].as_str().expect("kind") {
            "started" => {
                assert!(open.is_none(), "attempt started while {open:?} is open: {e}");
                open = Some((key.0, key.1, timestamp(e)));
            }
            end @ ("completed" | "failed") => {
                let Some((state, attempt, started)) = open.take() else {
                    panic!("{end} event closes no open attempt: {e}");
                };
                assert_eq!((state, attempt), key, "{end} event closes another attempt: {e}");
                out.push(Attempt { state, attempt, started, closed: timestamp(e), end: end.to_owned() });
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "an attempt is left open: {open:?}");
    out
}

/// Each milestone of the default catalog has exactly one `completed` event.
pub fn assert_each_completed_once(history: &[Value], what: &str) {
    let mut completed: BTreeMap<u64, usize> = BTreeMap::new();
    for e in history.iter().filter(|e| e["kind"] == "completed") {
        *completed.entry(e["state"].as_u64().expect("state")).or_default() += 1;
    }
    let expected: BTreeMap<u64, usize> = default_codes().map(|c| (u64::from(c), 1)).collect();
    assert_eq!(completed, expected, "{what}: completions per milestone");
}

/// Whether process `pid` is still alive: present in /proc, not a zombie, and still the
/// `cmdline` we expect (a recycled pid is somebody else).
pub fn process_alive(pid: u32, cmdline: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X")) {
        return false;
    }
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmd).replace('\0', " ").trim() == cmdline
}

/// This machine's host name, as the binary reads it (part of the default actor).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the host name").trim().to_owned()
}

/// Waits (at most `limit`) until `check` holds; returns whether it did.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fixture's scrub reaches the binary: a `BUILDSTATE_SYNC` (or any `BUILDSTATE_*`, or
/// a config dir) in the test process's environment is not what the binary sees. Runs
/// the binary in the environment the fixture builds from a parent that has them.
#[test]
fn the_fixture_keeps_the_callers_buildstate_variables_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(config_dir.join("buildstate")).expect("mkdir");
    std::fs::write(config_dir.join("buildstate/config.toml"), "actor = \"from-the-users-file\"\n")
        .expect("write a config file");
    let parent: Vec<(std::ffi::OsString, std::ffi::OsString)> = vec![
        ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
        ("BUILDSTATE_SYNC".into(), "file:///nowhere/copies".into()),
        ("BUILDSTATE_ACTOR".into(), "someone-else".into()),
        ("BUILDSTATE_LEASE_TTL".into(), "soon".into()),
        ("BUILDSTATE_NOT_YET_INVENTED".into(), "x".into()),
        ("XDG_CONFIG_HOME".into(), config_dir.clone().into_os_string()),
    ];
    let show = |env: Vec<(std::ffi::OsString, std::ffi::OsString)>| -> Run {
        let mut c = assert_cmd::Command::new(bin());
        c.env_clear().envs(env).args(["config", "show", "--json"]);
        c.output().expect("run buildstate").into()
    };
    // Unscrubbed, the parent's variables decide (the bad ttl is refused): the check below
    // would see them if the scrub let them through.
    let raw = show(parent.clone());
    assert_eq!(raw.code, 2, "the unscrubbed environment reaches the binary: {raw:?}");
    let scrubbed = show(clean_env(parent));
    assert_eq!(scrubbed.code, 0, "{scrubbed:?}");
    let v: Value = serde_json::from_str(&scrubbed.stdout).expect("config show --json");
    let settings = &v["settings"];
    assert_eq!(settings["sync"]["source"], "default", "{v}");
    assert_eq!(settings["actor"]["source"], "default", "{v}");
    assert_ne!(settings["actor"]["value"], "from-the-users-file", "{v}");
    assert_eq!(settings["lease_ttl"]["source"], "default", "{v}");
}

/// Replaces every time as the CLI prints it with a placeholder of the same width, so
/// that tables keep their layout.
pub fn redact_times(text: &str) -> String {
    let shape = b"dddd-dd-dd dd:dd:ddZ";
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let fits = bytes.len() - i >= shape.len()
            && shape
                .iter()
                .zip(&bytes[i..])
                .all(|(s, b)| if *s == b'd' { b.is_ascii_digit() } else { s == b });
        if fits {
            out.push_str("YYYY-MM-DD hh:mm:ssZ");
            i += shape.len();
        } else {
            let c = text[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A fresh PostgreSQL database for one test, dropped at the end.
pub struct PgDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub fn new() -> PgDb {
        let admin = std::env::var("BUILDSTATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!("BUILDSTATE_TEST_POSTGRES_URL is not set: run `source scripts/services.sh && start_postgres` first")
        });
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("t_{}_{}", std::process::id(), nanos % 1_000_000_000);
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
        PgDb { url: format!("{base}/{name}"), admin, name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .args(["-qAtc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}
