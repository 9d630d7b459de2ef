//! The fixture: a temp dir with a database, and helpers that run the binary and check
//! how it ended.

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

/// CI variables the binary reads; removed so that tests behave the same inside CI.
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
    "BUILDSTATE_DB",
    "BUILDSTATE_ACTOR",
    "BUILDSTATE_LOG",
];

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_buildstate")
}

/// A fresh store in a temp dir, removed on drop.
pub struct Env {
    pub dir: TempDir,
    pub db: PathBuf,
}

/// How a run ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
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
        Env { dir, db }
    }

    /// The binary with a clean environment pointing at this store.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = bare_cmd();
        c.env("BUILDSTATE_DB", &self.db).env("BUILDSTATE_ACTOR", "tester");
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
        let out = self.ok(&[
            "build",
            "create",
            "--platform",
            "aws-commercial",
            "--os",
            "rhel-9.6",
            "--image",
            "base",
            "--number",
            number,
        ]);
        assert_eq!(out.trim(), number);
        number.to_owned()
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

/// The binary with the CI and buildstate variables removed.
pub fn bare_cmd() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(bin());
    for v in CI_VARS {
        c.env_remove(v);
    }
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
