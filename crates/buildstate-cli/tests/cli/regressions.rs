//! Regression tests for the data loss and security defects hostile testing found
//! (issue 7, item 3), each against the real binary.

use crate::common::{Env, expect_error, read};

/// 3.1: coloured tool output under 4 KiB grew past the limit when escaped, was stored,
/// and then no read of the store worked again.
#[test]
fn coloured_metadata_is_refused_or_readable_never_poison() {
    let env = Env::new().with_catalog();
    let b = env.build("colour-1");
    let coloured = "\x1b[31mFAILED\x1b[0m ".repeat(200);
    assert!(coloured.len() < 4096, "under the limit as typed");
    let err = env.fails_unchanged(&b, &["meta", "set", &b, "tool_output", &coloured], 2);
    assert!(err.contains("escaped"), "the message says why it is too long: {err}");
    // What fits once escaped is stored and every read still works.
    env.ok(&["meta", "set", &b, "tool_output", &"\x1b[1mok ".repeat(100)]);
    env.ok(&["build", "list"]);
    env.ok(&["build", "show", &b]);
    let doc = env.export(&b);
    std::fs::write(env.path("doc.json"), &doc).expect("write");
    env.ok(&["import", env.path("doc.json").to_str().expect("utf-8"), "--replace"]);
    assert_eq!(env.export(&b), doc, "it round-trips");
}

/// 3.3: a milestone name from an imported document became part of a log path.
#[test]
fn imported_milestone_names_cannot_escape_the_logs_directory() {
    let env = Env::new().with_catalog();
    let b = env.build("names-1");
    let mut doc: serde_json::Value = serde_json::from_str(&env.export(&b)).expect("json");
    doc["build_id"] = serde_json::json!("0190a0a0-0000-7000-8000-000000000001");
    doc["build_number"] = serde_json::json!("names-2");
    let token = format!("bs1:{}:0:{}", doc["build_id"].as_str().expect("id"), doc["version"]);
    doc["resume_token"] = serde_json::json!(token);
    doc["catalog"][1]["name"] = serde_json::json!("x/../../../tmp/OUT");
    let file = env.path("evil.json");
    std::fs::write(&file, doc.to_string()).expect("write");
    let before = env.ok(&["build", "list", "--json"]);
    let err = env.fails(&["import", file.to_str().expect("utf-8")], 7);
    assert!(err.contains("x/../../../tmp/OUT") || err.contains("not valid"), "{err}");
    assert_eq!(env.ok(&["build", "list", "--json"]), before, "nothing was imported");
}

/// Item 4: after a rewind, the new attempt's output goes to a file of its own instead of
/// being appended to the old attempt's log.
#[test]
fn every_attempt_has_its_own_log_also_after_a_rewind() {
    let env = Env::new().with_catalog();
    let b = env.build("logs-1");
    env.ok(&["exec", &b, "0", "--", "sh", "-c", "echo first-run"]);
    env.ok(&["rewind", &b, "--to", "0", "--reason", "redo"]);
    env.ok(&["exec", &b, "0", "--", "sh", "-c", "echo second-run"]);
    let history = env.json(&["history", &b]);
    let logs: Vec<String> = history
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "started")
        .filter_map(|e| e["log"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(logs.len(), 2, "two attempts: {logs:?}");
    assert_ne!(logs[0], logs[1], "one log per attempt");
    assert_eq!(read(std::path::Path::new(&logs[0])).trim(), "first-run");
    assert_eq!(read(std::path::Path::new(&logs[1])).trim(), "second-run");
}

/// 3.6: `import /dev/zero` grew until the OOM killer ended it; `run` read without a
/// bound too. Non-regular files and oversized files are refused with exit 2, at once.
#[test]
fn unbounded_and_special_files_are_refused_before_reading() {
    let env = Env::new().with_catalog();
    let started = std::time::Instant::now();
    for special in ["/dev/zero", "/dev/null", "/tmp"] {
        let err = env.fails(&["import", special], 2);
        assert!(err.contains("not a regular file"), "import {special}: {err}");
        let err = env.fails(&["run", special], 2);
        assert!(err.contains("not a regular file"), "run {special}: {err}");
    }
    // A sparse 80 MiB file: over the cap, refused without reading it into memory.
    let big = env.path("big.json");
    std::fs::File::create(&big).and_then(|f| f.set_len(80 * 1024 * 1024)).expect("sparse file");
    let err = env.fails(&["import", big.to_str().expect("utf-8")], 2);
    assert!(err.contains("MiB"), "{err}");
    let err = env.fails(&["run", big.to_str().expect("utf-8")], 2);
    assert!(err.contains("MiB"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "refused quickly");
    assert_eq!(env.ok(&["build", "list", "--json"]).trim(), "[]", "nothing was created");
}

/// Item 2: blocking store work never runs on the threads that drive heartbeats, output
/// pumps and timeouts. Another process holds the SQLite write lock for twice the lease
/// ttl while a step runs: its output is still pumped to the log during the hold, its
/// timeout fires on time, and its lease is never taken over.
#[test]
fn a_long_store_lock_freezes_no_heartbeat_pump_or_timeout() {
    use std::time::{Duration, Instant};

    let env = Env::new().with_catalog();
    let mut yaml = String::from(
        "name: stall\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6]\n  image: [base]\nstates:\n",
    );
    for code in (0..=100).step_by(5) {
        if code == 5 {
            yaml.push_str("  5: {run: sh step5.sh, timeout: 4s, retry: {max_attempts: 1}}\n");
        } else {
            yaml.push_str(&format!("  {code}: {{run: \"true\"}}\n"));
        }
    }
    env.write(
        "step5.sh",
        "date +%s%N > started\ntrap 'date +%s%N > killed; exit 143' TERM\n\
         i=0; while [ $i -lt 200 ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.1; done\n",
    );
    let pipeline = env.write("stall.yml", &yaml);
    let logs = env.path("logs");
    let logs_arg = logs.to_str().expect("utf-8").to_owned();
    let mut runner = env.spawn_run("stall", &pipeline, &["--lease-ttl", "3s", "--logs-dir", &logs_arg]);
    let started = env.path("started");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline && runner.running(), "step 5 never started: {}", runner.output());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Twice the ttl, from another process: every store write of the runner waits.
    let db = env.db.to_str().expect("utf-8").to_owned();
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\nprint('locked',flush=True)\ntime.sleep(6)\nc.execute('COMMIT')",
            &db,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 holds the lock");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("locked");
    let locked_at = Instant::now();
    // Mid-hold, the step's output is already in its log.
    std::thread::sleep(Duration::from_secs(3));
    // Reads do not wait for the writer (WAL): the build's number, then its logs.
    let number = env.json(&["build", "list"])[0]["number"].as_str().expect("number").to_owned();
    let log = std::fs::read_dir(logs.join(&number))
        .expect("the build's log directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("005-"))
        .expect("the attempt's log file");
    let ticks = read(&log).lines().filter(|l| l.starts_with("tick")).count();
    assert!(ticks >= 15, "the output pump kept writing while the store was locked: {ticks} lines");
    assert!(locked_at.elapsed() < Duration::from_secs(6), "still inside the hold");
    assert!(holder.wait().expect("holder").success());
    let code = runner.wait(Duration::from_secs(60));
    assert_eq!(code, 8, "the build failed at 5 by its timeout: {}", runner.output());
    let nanos = |name: &str| read(&env.path(name)).trim().parse::<u128>().expect("nanoseconds");
    let ran_ms = (nanos("killed") - nanos("started")) / 1_000_000;
    assert!((3500..5500).contains(&ran_ms), "the 4 s timeout fired on time, during the hold: {ran_ms} ms");
    let history = env.json(&["history", &number]);
    let events = history.as_array().expect("events");
    let starts = events.iter().filter(|e| e["kind"] == "started" && e["state"] == 5).count();
    assert_eq!(starts, 1, "one attempt at 5: the lease was never taken over");
    let failed = events.iter().find(|e| e["kind"] == "failed").expect("a failure");
    assert_eq!(failed["state"], 5);
    let failures = env.json(&["failure", "list", "--build", &number]);
    assert_eq!(failures[0]["type"], "timeout", "{failures}");
}

/// Item 4: two `run`s of one pipeline at once. No build runs twice, and both exit 0
/// once every build is delivered, whoever ran it.
#[test]
fn two_runs_of_one_pipeline_both_succeed_when_it_is_delivered() {
    use crate::common::{assert_each_completed_once, step_pipeline};
    let env = Env::new().with_catalog();
    let yaml = step_pipeline("twice", &["base"], &[("STEP_SLEEP", "0.05")]);
    let pipeline = env.pipeline("twice", &yaml);
    let mut a = env.spawn_run("run-a", &pipeline, &["--lease-ttl", "3s"]);
    let mut b = env.spawn_run("run-b", &pipeline, &["--lease-ttl", "3s"]);
    let (ca, cb) = (a.wait(std::time::Duration::from_secs(120)), b.wait(std::time::Duration::from_secs(120)));
    assert_eq!((ca, cb), (0, 0), "both exit 0: {}\n{}", a.output(), b.output());
    let number = env.json(&["build", "list"])[0]["number"].as_str().expect("number").to_owned();
    let history = env.json(&["history", &number]);
    assert_each_completed_once(history.as_array().expect("events"), "two runners");
    let starts = history.as_array().expect("events").iter().filter(|e| e["kind"] == "started").count();
    assert_eq!(starts, 21, "no milestone ran twice");
}

/// Item 4: after `kill -9` of a runner, the next run on this host sees that the lease's
/// pid is gone and takes the build over at once instead of waiting out the ttl.
#[test]
fn a_killed_runners_build_is_taken_over_at_once_on_the_same_host() {
    use std::time::{Duration, Instant};

    use crate::common::step_pipeline;
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("killed", &step_pipeline("killed", &["base"], &[]));
    env.write("hang-25", "");
    let mut first = env.spawn_run("first", &pipeline, &["--lease-ttl", "10m"]);
    assert!(
        crate::common::eventually(Duration::from_secs(60), || env.path("grandchild.pid").exists()),
        "the step hangs at 25: {}",
        first.output()
    );
    first.kill();
    std::fs::remove_file(env.path("hang-25")).expect("stop hanging");
    let started = Instant::now();
    let mut second = env.spawn_run("second", &pipeline, &["--lease-ttl", "10m"]);
    let code = second.wait(Duration::from_secs(120));
    assert_eq!(code, 0, "delivered: {}", second.output());
    assert!(started.elapsed() < Duration::from_secs(90), "did not wait out the 10 minute lease");
    let number = env.json(&["build", "list"])[0]["number"].as_str().expect("number").to_owned();
    let failures = env.json(&["failure", "list", "--build", &number]);
    assert_eq!(failures[0]["type"], "interrupted", "the dead runner's attempt is closed: {failures}");
}

/// Item 4: `lease break` under a live runner warns, and the runner notices within a
/// few seconds and stops its step instead of running beside the next runner.
#[test]
fn lease_break_under_a_live_runner_stops_its_step_within_seconds() {
    use std::time::{Duration, Instant};

    use crate::common::{process_alive, step_pipeline};
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("broken", &step_pipeline("broken", &["base"], &[]));
    env.write("hang-25", "");
    let mut runner = env.spawn_run("runner", &pipeline, &["--lease-ttl", "60s"]);
    let pid_file = env.path("grandchild.pid");
    assert!(
        crate::common::eventually(Duration::from_secs(60), || pid_file.exists()),
        "the step hangs at 25: {}",
        runner.output()
    );
    let grandchild: u32 = read(&pid_file).trim().parse().expect("a pid");
    let number = env.json(&["build", "list"])[0]["number"].as_str().expect("number").to_owned();
    let r = env.run(&["lease", "break", &number]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("still running"), "warns that the holder is alive here: {}", r.stderr);
    let broke = Instant::now();
    assert!(
        crate::common::eventually(Duration::from_secs(15), || !process_alive(grandchild, "sleep 300")),
        "the step was stopped after the break"
    );
    assert!(broke.elapsed() < Duration::from_secs(8), "noticed within seconds: {:?}", broke.elapsed());
    let code = runner.wait(Duration::from_secs(30));
    assert_ne!(code, 0, "the runner lost its build: {}", runner.output());
}

/// The configured retry policies (`[retry.RANGE]`) apply to failures recorded by hand
/// and by `exec`, not only to pipeline steps.
#[test]
fn configured_retry_policies_apply_to_state_fail_and_exec() {
    let env = Env::new().with_catalog();
    let config = env.write("bs.toml", "[retry.0-100]\nmax_attempts = 1\n");
    let b = env.build("policy-1");
    let fail = env
        .cmd()
        .env("BUILDSTATE_CONFIG", &config)
        .args(["state", "fail", &b, "0", "--error", "boom", "--type", "script", "--class", "transient"])
        .output()
        .expect("run");
    assert_eq!(fail.status.code(), Some(0), "{fail:?}");
    let shown = env.json(&["build", "show", &b]);
    assert_eq!(shown["build"]["needs_intervention"], true, "one attempt allowed by the config: {shown}");
    let c = env.build("policy-2");
    let exec = env
        .cmd()
        .env("BUILDSTATE_CONFIG", &config)
        .args(["exec", &c, "0", "--", "sh", "-c", "exit 3"])
        .output()
        .expect("run");
    assert_eq!(exec.status.code(), Some(3), "exec passes the exit code through: {exec:?}");
    let shown = env.json(&["build", "show", &c]);
    assert_eq!(shown["build"]["needs_intervention"], true, "exec used the configured policy too: {shown}");
}

/// Hostile review: two stores in one directory shared their copy state (and logs), so
/// one machine's ETags became the base of the other's writes and a diverged copy was
/// overwritten. Each store has its own now: the copy keeps the first line of history,
/// both sides see the divergence.
#[test]
fn two_stores_in_one_directory_never_overwrite_each_others_copies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let copies = format!("file://{}", dir.path().join("copies").display());
    let db = |name: &str| dir.path().join(name).display().to_string();
    let run = |store: &str, actor: &str, args: &[&str]| {
        let out = crate::common::bare_cmd()
            .env("BUILDSTATE_DB", db(store))
            .env("BUILDSTATE_SYNC", &copies)
            .env("BUILDSTATE_ACTOR", actor)
            .args(args)
            .output()
            .expect("run buildstate");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, number) = run(
        "a.db",
        "a",
        &["build", "create", "--platform", "azure", "--os", "rhel-9.6", "--image", "base", "--add-missing"],
    );
    assert_eq!(code, Some(0));
    let number = number.trim().to_owned();
    run("a.db", "a", &["state", "complete", &number, "0"]);
    assert_eq!(run("c.db", "c", &["resume", &number, "--from", &copies]).0, Some(0));
    run("c.db", "c", &["state", "start", &number, "5"]);
    run("c.db", "c", &["state", "complete", &number, "5"]);
    // A continues from its own v3: diverged, however far it gets.
    run("a.db", "a", &["state", "start", &number, "5"]);
    run("a.db", "a", &["state", "fail", &number, "5", "--type", "t", "--class", "transient", "--error", "x"]);
    run("a.db", "a", &["retry", &number]);
    let copy = std::fs::read_dir(dir.path().join("copies/azure"))
        .expect("copies")
        .flatten()
        .map(|e| e.path().join("state.json"))
        .next()
        .expect("the copy");
    let doc: serde_json::Value = serde_json::from_str(&read(&copy)).expect("json");
    let actors: Vec<&str> =
        doc["history"].as_array().expect("history").iter().filter_map(|e| e["actor"].as_str()).collect();
    assert!(
        !actors.contains(&"a")
            || actors.iter().rposition(|a| *a == "c") > actors.iter().rposition(|a| *a == "a"),
        "c's line survives: {actors:?}"
    );
    assert_eq!(actors.last(), Some(&"c"), "the copy is still c's: {actors:?}");
    let (code, out) = run("a.db", "a", &["sync", "status"]);
    assert_eq!(code, Some(5), "a sees the divergence: {out}");
    assert!(out.contains("diverged"), "{out}");
    assert_ne!(dir.path().join("a.sync"), dir.path().join("c.sync"));
    assert!(dir.path().join("a.sync").is_dir() && dir.path().join("c.sync").is_dir(), "copy state per store");
}

/// Hostile review: a FIFO hung `import`, `run`, `--catalog`, `--error @FILE` and
/// `artifact add --file` for ever (opening it waits for a writer), and `artifact add
/// --file /dev/zero` hashed without end. Each is refused with exit 2 at once.
#[test]
fn fifos_and_devices_are_refused_without_waiting() {
    let env = Env::new().with_catalog();
    let b = env.build("fifo-1");
    let fifo = env.path("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let f = fifo.to_str().expect("utf-8").to_owned();
    let at_f = format!("@{f}");
    let started = std::time::Instant::now();
    let words = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<String>>();
    let artifact =
        |file: &str| words(&format!("artifact add {b} --name a --kind image --uri file:///x --file {file}"));
    for args in [
        words(&format!("import {f}")),
        words(&format!("run {f}")),
        words(&format!("build create --platform aws-commercial --os rhel-9.6 --image base --catalog {f}")),
        words(&format!("state fail {b} 0 --type t --class transient --error {at_f}")),
        artifact(&f),
        artifact("/dev/zero"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails_unchanged(&b, &args, 2);
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "nothing waited on the FIFO");
}

/// Hostile review: a pulled copy that fails validation is a bad document (exit 7, like
/// an import), not "unavailable" (6).
#[test]
fn a_pulled_copy_that_no_history_explains_is_exit_7() {
    let env = Env::new().with_catalog();
    let b = env.build("pulled-1");
    let mut doc: serde_json::Value = serde_json::from_str(&env.export(&b)).expect("json");
    doc["history"][0]["kind"] = serde_json::json!("completed");
    let dir = env.path("copies/aws/pulled-1");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("state.json"), doc.to_string()).expect("write");
    let url = format!("file://{}", env.path("copies").display());
    let fresh = Env::new();
    let r =
        fresh.cmd().env("BUILDSTATE_SYNC", &url).args(["sync", "pull", "pulled-1"]).output().expect("run");
    assert_eq!(r.status.code(), Some(7), "{r:?}");
    let r = fresh.cmd().args(["resume", "pulled-1", "--from", &url]).output().expect("run");
    assert_eq!(r.status.code(), Some(7), "{r:?}");
}

/// Hostile review: `--quiet` was ignored by most one-shot commands ("created a new
/// store at …", "added platform …", the warning of `lease break`). Under `--quiet` only
/// errors reach stderr, and stdout is exactly what it is without it.
#[test]
fn quiet_leaves_stderr_to_errors_and_stdout_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let create =
        ["build", "create", "--platform", "azure", "--os", "rhel-9.6", "--image", "base", "--add-missing"];
    let mut outputs = Vec::new();
    for quiet in [false, true] {
        let db = dir.path().join(format!("quiet-{quiet}.db"));
        let run = |args: &[&str]| -> crate::common::Run {
            let mut c = crate::common::bare_cmd();
            c.env("BUILDSTATE_DB", &db).env("BUILDSTATE_ACTOR", "tester");
            if quiet {
                c.arg("--quiet");
            }
            c.args(args).output().expect("run buildstate").into()
        };
        let made = run(&[&create[..], &["--number", "quiet-1"]].concat());
        assert_eq!(made.code, 0, "{made:?}");
        let added = run(&["platform", "add", "gcp", "--provider", "gcp"]);
        assert_eq!(added.code, 0, "{added:?}");
        if quiet {
            assert_eq!(made.stderr, "", "no notices under --quiet: {made:?}");
            assert_eq!(added.stderr, "", "{added:?}");
        } else {
            assert!(made.stderr.contains("created a new store at"), "{made:?}");
            assert!(made.stderr.contains("added platform azure"), "{made:?}");
        }
        outputs.push((made.stdout, added.stdout));
        // Errors are never quiet.
        let missing = run(&["build", "show", "nope"]);
        crate::common::expect_error(&missing, 3, "build show nope");
    }
    assert_eq!(outputs[0], outputs[1], "--quiet does not change stdout");
}

/// The same for the warning of `lease break` under a live holder on this host.
#[test]
fn quiet_lease_break_under_a_live_holder_prints_no_warning() {
    use std::time::Duration;

    let env = Env::new().with_catalog();
    let b = env.build("quiet-lease-1");
    let mut holder = env
        .std_cmd()
        .args(["exec", &b, "0", "--", "sleep", "30"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start exec");
    let held = crate::common::eventually(Duration::from_secs(30), || {
        env.json(&["lease", "list"]).as_array().is_some_and(|l| !l.is_empty())
    });
    let r = env.run(&["--quiet", "lease", "break", &b]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(held, "exec took the lease");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "", "no warning under --quiet: {r:?}");
    assert!(r.stdout.contains("broke lease"), "the data is still printed: {r:?}");
}

/// Hostile review: an existing 0-byte file, or /dev/null, given as `--db` was migrated
/// into a store by a read. An empty file is no store (exit 3, with the `init` that makes
/// it one) and stays empty; a device or FIFO is refused with exit 2 by every command,
/// `init` included, without waiting on it.
#[test]
fn empty_files_and_devices_never_become_stores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let with_db = |db: &std::path::Path, args: &[&str]| -> crate::common::Run {
        crate::common::bare_cmd().env("BUILDSTATE_DB", db).args(args).output().expect("run buildstate").into()
    };
    let reads: [&[&str]; 6] = [
        &["build", "list"],
        &["build", "show", "x"],
        &["history", "x"],
        &["failure", "list"],
        &["lease", "list"],
        &["export", "x"],
    ];
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").expect("an empty file");
    for args in reads {
        let r = with_db(&empty, args);
        let err = crate::common::expect_error(&r, 3, &format!("{args:?} on an empty file"));
        assert!(err.contains("empty file") && err.contains("buildstate init --db"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::metadata(&empty).expect("still there").len(), 0, "no read wrote to it");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    assert_eq!(names, ["empty.db"], "no -wal or -shm beside it");
    // A command that creates stores makes it one, and says so.
    let r = with_db(&empty, &["platform", "add", "gcp", "--provider", "gcp"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("created a new store"), "{r:?}");

    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let link = dir.path().join("null-link");
    std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
    let started = std::time::Instant::now();
    for db in [std::path::Path::new("/dev/null"), &fifo, &link] {
        for args in [&["build", "list"][..], &["platform", "add", "gcp", "--provider", "gcp"], &["init"]] {
            let r = with_db(db, args);
            let err = crate::common::expect_error(&r, 2, &format!("{args:?} on {}", db.display()));
            assert!(err.contains("not a file that can hold a store"), "{}: {args:?}: {err}", db.display());
        }
    }
    let r = with_db(std::path::Path::new("file:///dev/null"), &["build", "list"]);
    let err = crate::common::expect_error(&r, 2, "file:///dev/null");
    assert!(err.contains("not a directory"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "nothing waited on the FIFO");
}

/// Hostile review: `run PIPELINE` created an empty store before it read the pipeline
/// file. A pipeline file that is missing or invalid, an `--only` that selects nothing
/// and a logs directory that cannot be written are refused (exit 2) with nothing created.
#[test]
fn a_refused_run_creates_no_store() {
    let env = Env::new();
    let good = env.pipeline("good", &crate::common::step_pipeline("good", &["base"], &[]));
    let bad = env.write("bad.yml", "name: [\n");
    env.write("a-file", "");
    let under_a_file = env.path("a-file/logs").display().to_string();
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let missing = env.path("missing.yml");
    for args in [
        vec!["run".to_owned(), path(&bad)],
        vec!["run".to_owned(), path(&missing)],
        vec!["run".to_owned(), path(&good), "--only".to_owned(), "os=nope".to_owned()],
        vec![
            "run".to_owned(),
            path(&good),
            "--add-missing".to_owned(),
            "--logs-dir".to_owned(),
            under_a_file.clone(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.fails(&args, 2);
        assert!(!env.db.exists(), "{args:?} created the store");
    }
}

/// Hostile review: a `--logs-dir` that cannot be created (a path under a regular file)
/// failed every step at its start, recorded as a persistent failure of the milestone
/// and retried. It is the caller's setup: refused with exit 2 before anything runs or is
/// recorded — from the flag, the environment, or the default beside the store.
#[test]
fn an_unwritable_logs_directory_is_refused_before_anything_runs() {
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("logs", &crate::common::step_pipeline("logs", &["base"], &[]));
    let pipeline = pipeline.to_str().expect("utf-8");
    env.write("a-file", "");
    let under_a_file = env.path("a-file/logs").display().to_string();
    let err = env.fails(&["run", pipeline, "--logs-dir", &under_a_file], 2);
    assert!(err.contains("attempt logs cannot be written to") && err.contains("a-file/logs"), "{err}");
    let r: crate::common::Run = env
        .cmd()
        .env("BUILDSTATE_LOGS_DIR", &under_a_file)
        .args(["run", pipeline])
        .output()
        .expect("run")
        .into();
    crate::common::expect_error(&r, 2, "BUILDSTATE_LOGS_DIR under a file");
    assert_eq!(env.ok(&["build", "list", "--json"]).trim(), "[]", "no build was created");
    assert!(!env.path("side.log").exists(), "no step ran");

    let b = env.build("logs-1");
    let err = env.fails_unchanged(&b, &["exec", &b, "0", "--logs-dir", &under_a_file, "--", "true"], 2);
    assert!(err.contains("attempt logs cannot be written"), "{err}");
    // The default, `logs/` beside the store, taken by a regular file.
    env.write("logs", "");
    let err = env.fails_unchanged(&b, &["exec", &b, "0", "--", "true"], 2);
    assert!(err.contains("is not a directory"), "{err}");
    env.fails(&["run", pipeline], 2);
    assert_eq!(env.json(&["failure", "list"]), serde_json::json!([]), "no failure was recorded");
}

/// Hostile review: without `--actor` history said `unknown` whenever `USER` was unset
/// (cron, containers), and never which machine acted. The default is `$USER@hostname`
/// (`LOGNAME`, then the uid, when `USER` is unset); the flag, `BUILDSTATE_ACTOR` and the
/// config file still win.
#[test]
fn the_default_actor_is_user_at_host() {
    let env = Env::new().with_catalog();
    let host = crate::common::hostname();
    let b = env.build("actor-1");
    let act = |vars: &[(&str, &str)], args: &[&str]| {
        let mut c = env.cmd();
        c.env_remove("BUILDSTATE_ACTOR").env_remove("USER").env_remove("LOGNAME");
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c.args(args).output().expect("run buildstate");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        let history = env.history(&b);
        history.last().expect("an event")["actor"].as_str().expect("actor").to_owned()
    };
    assert_eq!(act(&[("USER", "ada")], &["state", "start", &b, "0"]), format!("ada@{host}"));
    assert_eq!(act(&[("LOGNAME", "bob")], &["state", "complete", &b, "0"]), format!("bob@{host}"));
    let uid = act(&[], &["state", "start", &b, "5"]);
    assert!(uid.starts_with("uid-") && uid.ends_with(&format!("@{host}")), "{uid}");
    assert_eq!(
        act(&[("USER", "ada"), ("BUILDSTATE_ACTOR", "ci-bot")], &["state", "complete", &b, "5"]),
        "ci-bot"
    );
    let config = env.write("actor.toml", "actor = \"from-file\"\n");
    let config = config.to_str().expect("utf-8");
    assert_eq!(
        act(&[("USER", "ada"), ("BUILDSTATE_CONFIG", config)], &["state", "start", &b, "10"]),
        "from-file"
    );
}

/// Columns a terminal gives `s`, for the characters these tests use: CJK and fullwidth
/// forms take two, combining accents none, the rest one.
fn columns(s: &str) -> usize {
    s.chars()
        .map(|c| match u32::from(c) {
            0x0300..=0x036F => 0,
            0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFF00..=0xFF60 => 2,
            _ => 1,
        })
        .sum()
}

/// Hostile review: the `config show` table was said to misalign values with
/// multi-byte characters. Columns line up by display width (a CJK character is two
/// columns, `ü` and a combining accent one and none), and a long value is cut to its
/// column budget in display width, not in characters.
#[test]
fn config_show_aligns_multibyte_values_by_display_width() {
    let env = Env::new();
    let long = format!("/var/ログ/{}", "日本".repeat(60));
    let r: crate::common::Run = env
        .cmd()
        .env("BUILDSTATE_ACTOR", "Jürgen-日本語-e\u{301}")
        .env("BUILDSTATE_LOGS_DIR", &long)
        .args(["config", "show"])
        .output()
        .expect("run")
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    let table: Vec<&str> =
        r.stdout.lines().skip_while(|l| !l.starts_with("KEY")).take_while(|l| !l.is_empty()).collect();
    let header = table[0];
    let source_at = columns(&header[..header.find("SOURCE").expect("a SOURCE column")]);
    for row in &table[1..] {
        let at = row.find(" default").or_else(|| row.find(" env ")).expect("a source") + 1;
        assert_eq!(columns(&row[..at]), source_at, "SOURCE starts in the same column: {row:?}\n{}", r.stdout);
    }
    let logs = table.iter().find(|l| l.starts_with("logs_dir")).expect("logs_dir row");
    let value = logs.trim_start_matches("logs_dir").trim_start();
    let value = &value[..value.find(" env ").expect("its source")].trim_end();
    assert!(
        value.ends_with('…') && columns(value) <= 80,
        "cut to 80 columns: {value:?} ({})",
        columns(value)
    );
    assert!(columns(value) >= 79, "and not shorter than that: {}", columns(value));
}

/// Hostile review: a build number given by hand could be 256 bytes, past the JSON-file
/// store's 250-byte file names and a sync backlog's, while the README said 200. One
/// limit now, 214 bytes (the longest number buildstate generates), which every store and
/// the backlog hold: a number at it works everywhere, one byte over is exit 2.
#[test]
fn build_numbers_at_the_limit_work_in_every_store_and_over_it_are_refused() {
    const LIMIT: usize = 214;
    let at = "n".repeat(LIMIT);
    let over = "n".repeat(LIMIT + 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let json_store = format!("file://{}", dir.path().join("json-store").display());
    for env in [Env::new(), Env::with_db(&json_store)] {
        if env.db.to_string_lossy().starts_with("file://") {
            env.ok(&["init"]);
        }
        let env = env.with_catalog();
        let create = |number: &str| {
            env.run(&[
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
            ])
        };
        let made = create(&at);
        assert_eq!((made.code, made.stdout.trim()), (0, at.as_str()), "{}: {made:?}", env.db.display());
        env.ok(&["state", "complete", &at, "0"]);
        assert_eq!(env.show(&at)["number"], at.as_str());
        let refused = create(&over);
        let err = crate::common::expect_error(&refused, 2, "one byte over");
        assert!(err.contains(&format!("1-{LIMIT} characters")), "{err}");
    }

    // A copy that cannot be pushed waits in the backlog under a file name that fits,
    // even with the longest provider name.
    let env = Env::new();
    let provider = "p".repeat(64);
    env.ok(&["platform", "add", &provider, "--provider", &provider]);
    env.ok(&["os", "add", "rhel-9.6", "--family", "rhel", "--major", "9"]);
    env.ok(&["image-type", "add", "base"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let r: crate::common::Run = env
        .cmd()
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .args(["--sync", "s3://bucket/p", "build", "create", "--platform", &provider, "--os", "rhel-9.6"])
        .args(["--image", "base", "--number", &at])
        .output()
        .expect("run")
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("backlog"), "the copy was queued: {r:?}");
    let mut queued = Vec::new();
    let mut dirs = vec![env.path("sync")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("list").flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if d.ends_with("backlog") {
                queued.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(queued[0].len() <= 255 && queued[0].ends_with(".json"), "{}", queued[0]);
}

/// Hostile review: one corrupt document in a JSON-file store made the whole `build
/// list` fail. The readable builds are still listed (table and `--json`), each corrupt
/// file is named in one error line on stderr — also under `--quiet` — and the exit code
/// is 7, so that a script notices; nothing is hidden.
#[test]
fn build_list_shows_the_readable_builds_and_names_the_corrupt_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store");
    let env = Env::with_db(&format!("file://{}", store.display()));
    env.ok(&["init"]);
    let env = env.with_catalog();
    for n in ["list-1", "list-2", "list-3"] {
        env.build(n);
    }
    let damaged = store.join("builds/list-2.json");
    let text = read(&damaged);
    std::fs::write(&damaged, &text[..text.len() / 2]).expect("truncate");

    let r = env.run(&["build", "list"]);
    assert_eq!(r.code, 7, "{r:?}");
    assert!(r.stdout.contains("list-1") && r.stdout.contains("list-3"), "readable builds listed: {r:?}");
    assert!(!r.stdout.contains("list-2"), "{r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(lines.len() == 2 && lines[0].starts_with("error: 1 build document in file://"), "{r:?}");
    assert!(lines[0].contains(&damaged.display().to_string()), "names the file: {r:?}");
    assert!(lines[1].starts_with("hint: the other builds are listed"), "{r:?}");

    let r = env.run(&["--quiet", "build", "list", "--json", "--status", "pending"]);
    assert_eq!(r.code, 7, "{r:?}");
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON of the readable builds");
    let numbers: Vec<&str> =
        listed.as_array().expect("array").iter().filter_map(|b| b["number"].as_str()).collect();
    assert_eq!(numbers, ["list-3", "list-1"], "newest first, filtered: {r:?}");
    assert!(
        r.stderr.starts_with("error: ") && r.stderr.contains("list-2.json"),
        "errors are never quiet: {r:?}"
    );

    // Fixed, the list is whole again and exits 0.
    std::fs::write(&damaged, text).expect("restore");
    assert_eq!(env.json(&["build", "list"]).as_array().map(Vec::len), Some(3));
}

/// Hostile review: a step's timeout was said to count the wait for the store lock
/// before the step started. The store is write-locked by another process for 3 s just
/// as milestone 0 ends, so recording it and starting 5 wait; 5's 2 s timeout then runs
/// from 5's own process start: the step lives its 2 s (not 2 s minus the wait), and the
/// recorded attempt is not 3 s longer than the step.
#[test]
fn a_steps_timeout_starts_with_its_process_not_before_a_store_lock_wait() {
    use std::time::{Duration, Instant};

    let env = Env::new().with_catalog();
    let mut yaml = String::from(
        "name: late\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6]\n  image: [base]\nstates:\n",
    );
    for code in (0..=100).step_by(5) {
        match code {
            0 => yaml.push_str("  0: {run: sh step0.sh}\n"),
            5 => yaml.push_str("  5: {run: sh step5.sh, timeout: 2s, retry: {max_attempts: 1}}\n"),
            _ => yaml.push_str(&format!("  {code}: {{run: \"true\"}}\n")),
        }
    }
    // 0 says it is about to end and waits until the test holds the lock.
    env.write("step0.sh", "touch ready\nwhile [ ! -e locked ]; do sleep 0.05; done\n");
    env.write(
        "step5.sh",
        "date +%s%N > started\ntrap 'date +%s%N > killed; exit 143' TERM\nsleep 30 &\nwait\n",
    );
    let pipeline = env.write("late.yml", &yaml);
    let mut runner = env.spawn_run("late", &pipeline, &[]);
    assert!(
        crate::common::eventually(Duration::from_secs(60), || env.path("ready").exists()),
        "step 0 ran: {}",
        runner.output()
    );
    let db = env.db.to_str().expect("utf-8").to_owned();
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\nprint('locked',flush=True)\ntime.sleep(3)\nc.execute('COMMIT')",
            &db,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 holds the lock");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("locked");
    let locked_at = Instant::now();
    env.write("locked", "");
    assert!(holder.wait().expect("holder").success());
    assert_eq!(runner.wait(Duration::from_secs(60)), 8, "5 timed out: {}", runner.output());
    assert!(locked_at.elapsed() >= Duration::from_secs(3));

    let nanos = |name: &str| read(&env.path(name)).trim().parse::<u128>().expect("nanoseconds");
    let ran_ms = (nanos("killed") - nanos("started")) / 1_000_000;
    assert!((1800..3000).contains(&ran_ms), "the 2 s timeout ran from the step's start: {ran_ms} ms");
    let number = env.json(&["build", "list"])[0]["number"].as_str().expect("number").to_owned();
    let failures = env.json(&["failure", "list", "--build", &number]);
    assert_eq!(failures[0]["type"], "timeout", "{failures}");
    let recorded = failures[0]["details"]["duration_ms"].as_u64().expect("duration_ms");
    assert!(
        (1800..4500).contains(&recorded),
        "the attempt's duration is the step's, not the wait's: {recorded} ms"
    );
    let history = env.history(&number);
    let failed = history.iter().find(|e| e["kind"] == "failed").expect("the failed event");
    let event_ms = failed["duration_ms"].as_u64().expect("duration_ms");
    assert!(event_ms < 4500, "the history's attempt does not start before the lock wait: {event_ms} ms");
}

/// The directory under `<data dir>/buildstate/postgres/` whose `logs/` holds `log`.
fn postgres_store_dir(env: &Env, log: &std::path::Path) -> String {
    let own = env.path("xdg/buildstate/postgres");
    let rest =
        log.strip_prefix(&own).unwrap_or_else(|_| panic!("{} is not under {}", log.display(), own.display()));
    rest.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default().to_owned()
}

/// Review of 5240147: a PostgreSQL store's logs and sync-state directory was named
/// after its URL with the query string, so asking the same database for TLS
/// (`?sslmode=require`, `sslrootcert=…`) moved them, and `buildstate logs` of the
/// earlier runs looked in the new one. The name comes from the hosts, port, database
/// and `search_path` only: every spelling of one database shares one directory, the
/// key/value form included.
#[test]
fn a_postgres_stores_logs_stay_put_whatever_its_tls_options() {
    use crate::common::PgDb;
    use crate::location::{catalog_and_build, log_of, on};
    let env = Env::new();
    let pg = PgDb::new();
    let ca = std::env::var("BUILDSTATE_TEST_POSTGRES_CA").unwrap_or_else(|_| {
        panic!(
            "BUILDSTATE_TEST_POSTGRES_CA is not set: run `source scripts/services.sh && start_postgres` first"
        )
    });
    let (_, authority) = pg.url.split_once("://").expect("a URL");
    let (creds, _) = authority.split_once('@').expect("credentials in the test URL");
    let (user, password) = creds.split_once(':').expect("user:password");
    let spellings = [
        pg.url.clone(),
        format!("{}?sslmode=require", pg.url),
        format!("{}?sslmode=verify-full&sslrootcert={ca}", pg.url),
        format!("{}?application_name=other&sslmode=disable&connect_timeout=5", pg.url),
        format!(
            "host=127.0.0.1 port=5432 user={user} password={password} dbname={} sslmode=require",
            pg.name
        ),
    ];
    catalog_and_build(&env, &spellings[0], "tls-0");
    let first = postgres_store_dir(&env, &log_of(&env, &spellings[0], "tls-0"));
    assert!(first.ends_with(&pg.name), "named after the database: {first}");
    for (i, db) in spellings.iter().enumerate().skip(1) {
        let number = format!("tls-{i}");
        let r = on(
            &env,
            db,
            &[
                "build",
                "create",
                "--platform",
                "aws",
                "--os",
                "rhel-9.6",
                "--image",
                "base",
                "--number",
                &number,
            ],
        );
        assert_eq!(r.code, 0, "{db}: {r:?}");
        let dir = postgres_store_dir(&env, &log_of(&env, db, &number));
        assert_eq!(dir, first, "{db}");
        // The earlier runs' logs are still found through this spelling.
        let r = on(&env, db, &["logs", "tls-0"]);
        assert_eq!((r.code, r.stdout.as_str()), (0, "hello from the step\n"), "{db}: {r:?}");
    }
    let names: Vec<String> = std::fs::read_dir(env.path("xdg/buildstate/postgres"))
        .expect("the postgres directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [first], "one directory for the one database");
}

/// Review of 5240147: a libpq key/value string (`host=… password=… dbname=…`) was taken
/// for a SQLite path, and "no store at …" printed it, password and all. It is a
/// PostgreSQL connection string (the backend reads that form), and its password is
/// hidden everywhere: errors, `config show`, `--help`; a `postgres:` URL one slash
/// short is refused without being echoed.
#[test]
fn a_key_value_connection_string_is_postgres_and_its_password_is_never_shown() {
    use crate::common::PgDb;
    use crate::location::on;
    const SECRET: &str = "kv-s3cret-42";
    let env = Env::new();
    let pg = PgDb::new();
    let (_, authority) = pg.url.split_once("://").expect("a URL");
    let (creds, _) = authority.split_once('@').expect("credentials in the test URL");
    let (user, password) = creds.split_once(':').expect("user:password");

    let good = format!("host=127.0.0.1 port=5432 user={user} password='{password}' dbname={}", pg.name);
    let r = on(&env, &good, &["platform", "add", "aws", "--provider", "aws"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = on(&env, &good, &["platform", "list", "--json"]);
    assert!(r.code == 0 && r.stdout.contains("\"aws\""), "{r:?}");
    assert!(!env.path(&good).exists() && !env.path("buildstate.db").exists(), "no SQLite file was made");

    let wrong = format!("host=127.0.0.1 port=5432 user={user} password={SECRET} dbname={}", pg.name);
    let nobody = format!("host=127.0.0.1 port=1 user=x password='{SECRET} x' dbname=y");
    let unread = format!("host=127.0.0.1 port=1 dbname=y sslpassword={SECRET}");
    for db in [&wrong, &nobody, &unread] {
        let r = on(&env, db, &["build", "list"]);
        assert_eq!(r.code, 6, "{db}: {r:?}");
        assert!(!r.stderr.contains(SECRET) && !r.stdout.contains(SECRET), "{r:?}");
        assert!(r.stderr.contains("password=***"), "the location is shown, redacted: {r:?}");
        assert!(!r.stderr.contains("no store at"), "not taken for a file: {r:?}");
        let r = on(&env, "", &["build", "list", "--db", db]);
        assert!(r.code == 6 && !r.stderr.contains(SECRET), "as a flag: {r:?}");
        for args in [&["config", "show"][..], &["config", "show", "--json"], &["--help"], &["run", "--help"]]
        {
            let r = on(&env, db, args);
            assert_eq!(r.code, 0, "{args:?}: {r:?}");
            assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET), "{args:?}: {r:?}");
        }
        let shown = on(&env, db, &["config", "show"]).stdout;
        assert!(shown.contains("password=***"), "{shown}");
    }
    let r = on(&env, &format!("postgres://127.0.0.1:1/y?sslpassword={SECRET}"), &["build", "list"]);
    assert!(r.code == 6 && !r.stderr.contains(SECRET), "a parameter the backend does not know: {r:?}");
    let config = env.write("kv.toml", &format!("db = \"{wrong}\"\n"));
    let r = on(&env, "", &["--config", config.to_str().expect("utf-8"), "config", "show"]);
    assert!(r.code == 0 && !r.stdout.contains(SECRET) && r.stdout.contains("password=***"), "{r:?}");

    for typo in [format!("postgres:/{user}:{SECRET}@127.0.0.1/{}", pg.name), format!("postgresql:{SECRET}")] {
        let r = on(&env, &typo, &["build", "list"]);
        assert_eq!(r.code, 2, "{typo}: {r:?}");
        assert!(!r.stderr.contains(SECRET), "{r:?}");
    }
}

/// Review of 5240147: a PostgreSQL store that cannot be used (TLS refused, a
/// certificate that does not verify, a wrong password) got the hint "check the path
/// given by --db", which is about files. The hint fits the kind of store.
#[test]
fn an_unusable_postgres_store_gets_a_hint_about_its_url() {
    use crate::common::PgDb;
    use crate::location::on;
    let env = Env::new();
    let pg = PgDb::new();
    let (_, authority) = pg.url.split_once("://").expect("a URL");
    let (creds, _) = authority.split_once('@').expect("credentials in the test URL");
    let (user, _) = creds.split_once(':').expect("user:password");
    let hint = |r: &crate::common::Run| {
        r.stderr.lines().find_map(|l| l.strip_prefix("hint: ")).unwrap_or_default().to_owned()
    };
    // verify-full without a CA (HOME has no ~/.postgresql/root.crt), and a wrong password.
    let bad_password = pg.url.replacen(&format!("{creds}@"), &format!("{user}:wrong-password@"), 1);
    for db in [format!("{}?sslmode=verify-full", pg.url), bad_password] {
        let r = on(&env, &db, &["build", "list"]);
        assert_eq!(r.code, 6, "{db}: {r:?}");
        let hint = hint(&r);
        assert!(hint.starts_with("check the URL given by --db or BUILDSTATE_DB"), "{db}: {r:?}");
        assert!(hint.contains("sslmode") && !hint.contains("path"), "{hint}");
    }
    let r = on(&env, &format!("host=127.0.0.1 port=1 dbname={}", pg.name), &["build", "list"]);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(hint(&r).starts_with("check the connection string given by --db"), "{r:?}");
}

/// Review of 2e46c3b: `run` and `exec` refuse a logs directory that cannot be written
/// before any step runs, but `worker` took builds and failed each at its first step,
/// recording a persistent failure the build did not have. It refuses it too (exit 2),
/// leaving the queued builds to other workers.
#[test]
fn a_worker_refuses_an_unwritable_logs_directory_before_taking_builds() {
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("queued", &crate::common::step_pipeline("queued", &["base"], &[]));
    let pipeline = pipeline.to_str().expect("utf-8");
    env.ok(&["enqueue", pipeline]);
    let queued = env.ok(&["build", "list", "--json"]);
    env.write("a-file", "");
    let under_a_file = env.path("a-file/logs").display().to_string();
    let worker = ["worker", pipeline, "--exit-when-idle", "--poll", "100ms"];
    let err = env.fails(&[&worker[..], &["--logs-dir", &under_a_file]].concat(), 2);
    assert!(err.contains("attempt logs cannot be written to") && err.contains("a-file/logs"), "{err}");
    // The default, `logs/` beside the store, taken by a regular file.
    env.write("logs", "");
    let err = env.fails(&worker, 2);
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(env.ok(&["build", "list", "--json"]), queued, "no build was taken or changed");
    assert!(!env.path("side.log").exists(), "no step ran");
    assert_eq!(env.json(&["failure", "list"]), serde_json::json!([]), "no failure was recorded");
}

/// Hostile review: CI templates write `BUILDSTATE_LEASE_TOKEN: ""` and
/// `BUILDSTATE_CONFIG: ""`; an empty variable counts as unset, as the README says, not
/// as an empty value that every command refuses.
#[test]
fn empty_lease_token_and_config_variables_count_as_unset() {
    let env = Env::new().with_catalog();
    env.build("empty-env-1");
    for var in ["BUILDSTATE_LEASE_TOKEN", "BUILDSTATE_CONFIG"] {
        let out = env.cmd().env(var, "").args(["build", "list"]).output().expect("run");
        assert_eq!(out.status.code(), Some(0), "{var}=\"\": {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("empty-env-1"), "{var}");
    }
    let out = env.cmd().env("BUILDSTATE_LEASE_TOKEN", "abc").args(["build", "list"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "a token that is not a number is still refused");
}

/// Hostile review: `config show` printed a `postgres:` value one slash short of a URL
/// whole, password included, while every command refused it without echoing it.
#[test]
fn config_show_hides_a_malformed_postgres_value() {
    let env = Env::new();
    let value = "postgres:ci:SuperSecret123@127.0.0.1/x";
    for args in [&["--db", value, "config", "show"][..], &["--db", value, "config", "show", "--json"]] {
        let out = env.ok(args);
        assert!(!out.contains("SuperSecret123"), "{args:?}: {out}");
        assert!(out.contains("postgres:***"), "{args:?}: {out}");
    }
}

/// Hostile review: a `lease_ttl` outside 3s … 24h in the config file passed `config
/// show` and was then blamed on the `--lease-ttl` flag nobody gave.
#[test]
fn a_config_files_lease_ttl_out_of_range_is_the_files_error() {
    let env = Env::new();
    let file = env.path("config.toml");
    std::fs::write(&file, "lease_ttl = \"1s\"\n").expect("write");
    let config = file.to_str().expect("utf-8");
    for args in
        [&["--config", config, "config", "show"][..], &["--config", config, "exec", "x", "5", "--", "true"]]
    {
        let err = env.fails(args, 2);
        assert!(err.contains("config.toml:1:13: lease_ttl:") && err.contains("3s"), "{args:?}: {err}");
        assert!(!err.contains("--lease-ttl"), "{err}");
    }
}

/// Hostile review: `enqueue` on a catalog without the matrix's names hinted "or pass
/// --add-missing", which it did not take (exit 2); it takes it as `run` does.
#[test]
fn enqueue_takes_the_add_missing_it_suggests() {
    let env = Env::new();
    env.ok(&["init"]);
    let pipeline = env.write(
        "q.yml",
        "name: q\nmatrix: {platform: [gcp], os: [rhel-9.6], image: [base]}\nstates: {0: {run: \"true\"}}\n",
    );
    let pipeline = pipeline.to_str().expect("utf-8 path");
    let r = env.run(&["enqueue", pipeline]);
    expect_error(&r, 3, "names missing from the catalog");
    assert!(r.stderr.contains("--add-missing"), "the hint offers it: {r:?}");
    let queued = env.json(&["enqueue", pipeline, "--add-missing"]);
    assert_eq!(queued.as_array().map(Vec::len), Some(1), "{queued}");
}
