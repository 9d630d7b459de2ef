//! The dashboard in a real browser: headless Chromium driven by Python selenium
//! (`dashboard_driver.py` beside this file) against `buildstate serve` on a store
//! seeded with the CLI. The driver checks that the matrix shows the seeded builds with
//! their milestones and statuses, that a cell opens its build, that a CLI transition
//! appears live, that retry is refused for a read token and works for a write token,
//! and that no page logs a console error; it saves a screenshot of each view under
//! `target/dashboard-screenshots/`. `scripts/setup.sh` installs the browser
//! (`install_chromium`) and selenium (`scripts/selenium.sh`); in CI a missing one fails
//! this test, it never skips.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::Env;

/// The python of the selenium venv, if it and the browser are there. `None` outside
/// CI when something is missing; in CI that fails the test.
fn driver_python() -> Option<PathBuf> {
    let from_env = std::env::var_os("BUILDSTATE_SELENIUM_PYTHON").map(PathBuf::from);
    let default = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/buildstate/selenium-4.51.0/bin/python"));
    let python = from_env.or(default).filter(|p| p.exists());
    let on_path = |name: &str| {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    let missing: Vec<&str> = [("selenium (bash scripts/selenium.sh)", python.is_some())]
        .into_iter()
        .chain([("chromium", on_path("chromium")), ("chromedriver", on_path("chromedriver"))])
        .filter(|(_, there)| !there)
        .map(|(what, _)| what)
        .collect();
    if missing.is_empty() {
        return python;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the browser test needs {missing:?}: scripts/setup.sh installs them"
    );
    eprintln!("{missing:?} missing (scripts/setup.sh installs them): the browser test checked nothing");
    None
}

/// Where screenshots go: `target/dashboard-screenshots`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("dashboard-screenshots")
}

fn build(env: &Env, number: &str, platform: &str, os: &str) {
    env.ok(&["build", "create", "--platform", platform, "--os", os, "--image", "base", "--number", number]);
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let Some(python) = driver_python() else { return };
    let env = Env::new().with_catalog();
    env.ok(&["platform", "add", "aws-govcloud", "--provider", "aws", "--region", "us-gov-west-1"]);
    env.ok(&["os", "add", "rhel-8.10", "--family", "rhel", "--major", "8", "--minor", "10"]);
    // Delivered, failed (with hostile text and a log), running, and one pending.
    build(&env, "dash-done", "aws-commercial", "rhel-9.6");
    env.advance_to("dash-done", 100);
    env.ok(&["state", "complete", "dash-done", "100"]);
    build(&env, "dash-fail", "aws-commercial", "rhel-8.10");
    env.advance_to("dash-fail", 25);
    let hostile = "<script>window.__hostile=1</script> mirror 503";
    let meta = "<img src=x onerror=\"window.__hostile=2\">";
    env.ok(&["meta", "set", "dash-fail", "note", meta]);
    let log = env.path("logs/dash-fail/025-x-1-e99.log");
    std::fs::create_dir_all(log.parent().expect("dir")).expect("logs dir");
    std::fs::write(&log, "fetching mirror\nHTTP 503 from the mirror\n").expect("a log");
    env.ok(&["state", "start", "dash-fail", "25", "--log", &log.display().to_string()]);
    env.ok(&[
        "state",
        "fail",
        "dash-fail",
        "25",
        "--error",
        hostile,
        "--type",
        "network",
        "--class",
        "transient",
    ]);
    build(&env, "dash-run", "aws-govcloud", "rhel-9.6");
    env.advance_to("dash-run", 10);
    env.ok(&["state", "start", "dash-run", "10"]);
    build(&env, "dash-new", "aws-govcloud", "rhel-8.10");
    let read = env.ok(&["token", "create", "--name", "viewer", "--scopes", "read"]).trim().to_owned();
    let write = env.ok(&["token", "create", "--name", "operator", "--scopes", "write"]).trim().to_owned();
    let server = env.spawn("server", &["serve", "--listen", "127.0.0.1:0"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let out = std::fs::read_to_string(env.path("server.stdout")).unwrap_or_default();
        if let Some(url) = out.lines().next() {
            break url.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "the server printed no address: {}", server.output());
        std::thread::sleep(Duration::from_millis(20));
    };
    let shots = screenshots();
    let spec = serde_json::json!({
        "url": url,
        "read_token": read,
        "write_token": write,
        "screenshots": shots,
        "cells": [
            {"build": "dash-done", "state": 100, "status": "completed"},
            {"build": "dash-fail", "state": 25, "status": "failed"},
            {"build": "dash-run", "state": 10, "status": "running"},
            {"build": "dash-new", "state": 0, "status": "pending"},
        ],
        "failed": {"build": "dash-fail", "message": hostile, "meta": meta, "log_text": "HTTP 503 from the mirror"},
        "running": {
            "build": "dash-run", "from": 10, "to": 15,
            "command": [crate::common::bin(), "state", "complete", "dash-run", "10"],
            "env": {"BUILDSTATE_DB": env.path("buildstate.db"), "BUILDSTATE_ACTOR": "tester"},
        },
        "running_view": "dash-run",
    });
    let spec_path = env.path("dashboard-spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("write the spec");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/dashboard_driver.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&spec_path)
        .env_remove("BUILDSTATE_SERVER")
        .env_remove("BUILDSTATE_TOKEN")
        .output()
        .expect("run the browser driver");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // A dashboard left open: its stream ends at the stop, which does not wait for it.
    let mut open = std::net::TcpStream::connect(url.trim_start_matches("http://")).expect("connect");
    write!(open, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {read}\r\n\r\n")
        .expect("send");
    let mut head = [0u8; 64];
    let n = open.read(&mut head).expect("the stream's headers");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"), "{:?}", &head[..n]);
    let mut server = server;
    let stopping = Instant::now();
    server.signal("TERM");
    let code = server.wait(Duration::from_secs(30));
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the open stream held the stop: {:?}",
        stopping.elapsed()
    );
    assert!(out.status.success(), "the browser found something:\n{text}\nserver: {}", server.output());
    for check in [
        "matrix cell dash-done",
        "matrix cell dash-fail",
        "matrix cell dash-run",
        "matrix cell dash-new",
        "a cell opens its build",
        "hostile text is shown as text",
        "no hostile script ran",
        "an attempt's full log",
        "retry refused with a read token",
        "the refused retry changed nothing",
        "a CLI transition appears live",
        "the transition appeared within a second",
        "without a reload",
        "retry works with a write token",
        "no console errors on the matrix",
        "no console errors on the build page",
        "no console errors on the attention view",
        "no console errors on the running view",
        "no console errors on the reports view",
    ] {
        assert!(text.contains(&format!("CHECK {check} ok")), "the driver did not check {check:?}:\n{text}");
    }
    assert!(text.contains("DRIVER DONE"), "{text}");
    if let Some(live) = text.lines().find(|l| l.starts_with("LIVE ")) {
        eprintln!("the CLI's transition showed in the open page after {} s", &live[5..]);
    }
    for view in ["signin", "matrix", "build", "attention", "running", "reports"] {
        assert!(shots.join(format!("{view}.png")).is_file(), "no screenshot of {view}");
    }
    assert_eq!(code, 0, "the server stopped cleanly: {}", server.output());
    // The build was retried through the dashboard: its history says who.
    let history = env.ok(&["history", "dash-fail", "--json"]);
    assert!(history.contains("dashboard via token:operator"), "{history}");
}
