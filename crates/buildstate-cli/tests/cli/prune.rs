//! `prune`: old finished builds go whole, with their attempt logs; builds a runner or a
//! person still has stay; a kill at any instant leaves every build whole or gone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use buildstate_core::{BuildDocument, BuildId, BuildNumber, LeaseRequest};
use buildstate_sqlite::SqliteStore;
use buildstate_store::{BuildFilter, ImportMode, Store, StoreError};

use crate::common::{Env, Run, bare_std_cmd};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// `buildstate ARGS…` run in the fixture's directory (where `exec` writes its logs).
fn here(env: &Env, args: &[&str]) -> Run {
    env.cmd().current_dir(env.dir.path()).args(args).output().expect("run buildstate").into()
}

/// `exec BUILD CODE -- sh -c SCRIPT`, expecting the script's exit code.
fn exec(env: &Env, build: &str, code: u8, script: &str, exit: i32) {
    let r = here(env, &["exec", build, &code.to_string(), "--", "sh", "-c", script]);
    assert_eq!(r.code, exit, "exec {build} {code} {script:?}: {r:?}");
}

/// Delivers `build` from wherever it is (every later milestone completed).
fn deliver(env: &Env, build: &str) {
    let at = env.show(build)["state"].as_u64().expect("a state") as u8;
    env.advance_to_from(build, at, 100);
    env.ok(&["state", "complete", build, "100"]);
}

/// The log files recorded in a build's history.
fn logs_of(env: &Env, build: &str) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> =
        env.history(build).iter().filter_map(|e| e["log"].as_str()).map(|l| env.dir.path().join(l)).collect();
    logs.sort();
    logs.dedup();
    logs
}

/// The time now, as `--completed-before` takes it: every build finished so far is before it.
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// A runner's lease on `build`, taken through the library as a runner process would.
fn lease(db: &Path, build: &str) {
    runtime().block_on(async {
        let store = SqliteStore::open(db).expect("open the store");
        let b = store.find_build(build).await.expect("find the build");
        let request = LeaseRequest {
            owner: "runner-7".into(),
            host: "ci-host-3".into(),
            pid: 4242,
            ttl: Duration::from_secs(3600),
        };
        store.acquire_lease(b.id, &request).await.expect("acquire the lease");
    });
}

#[test]
fn prune_dry_run_changes_nothing_and_prune_removes_old_builds_with_their_logs() {
    let env = Env::new().with_catalog();
    // Delivered through a failed attempt: three attempt logs.
    let done = env.build("done-1");
    exec(&env, &done, 0, "echo building", 0);
    exec(&env, &done, 5, "echo broken >&2; exit 3", 3);
    exec(&env, &done, 5, "echo fixed", 0);
    deliver(&env, &done);
    let cancelled = env.build("gone-1");
    exec(&env, &cancelled, 0, "echo started", 0);
    env.ok(&["build", "cancel", &cancelled, "--reason", "superseded"]);
    // Its log was written elsewhere: not this store's logs directory, so it stays.
    let outside = env.build("outside-1");
    let elsewhere = env.path("elsewhere");
    let r =
        here(&env, &["exec", &outside, "0", "--logs-dir", elsewhere.to_str().expect("utf-8"), "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    env.ok(&["build", "cancel", &outside, "--reason", "superseded"]);
    let running = env.build("run-1");
    exec(&env, &running, 0, "true", 0);
    let leased = env.build("lease-1");
    deliver(&env, &leased);
    lease(&env.db, &leased);
    let open = env.build("open-1");
    exec(&env, &open, 0, "exit 1", 1);
    let fixed = env.build("fixed-1");
    exec(&env, &fixed, 0, "exit 1", 1);
    env.ok(&["failure", "resolve", &fixed, "--notes", "the mirror was down"]);
    let all = [&done, &cancelled, &outside, &running, &leased, &open, &fixed];
    let exports = |builds: &[&String]| builds.iter().map(|b| env.export(b)).collect::<Vec<_>>();
    let before = exports(&all);
    let done_logs = logs_of(&env, &done);
    assert_eq!(done_logs.len(), 3, "{done_logs:?}");
    assert!(done_logs.iter().all(|l| l.is_file() && l.starts_with(env.path("logs"))), "{done_logs:?}");
    let outside_logs = logs_of(&env, &outside);
    assert!(outside_logs.iter().all(|l| l.is_file() && l.starts_with(&elsewhere)), "{outside_logs:?}");

    // Too recent for 90 days.
    let out = env.ok(&["prune", "--completed-before", "90d"]);
    assert!(out.starts_with("nothing to prune: no completed or cancelled build finished before"), "{out}");
    assert_eq!(exports(&all), before);

    let cut = now();
    let out = env.ok(&["prune", "--completed-before", &cut, "--dry-run"]);
    assert!(out.contains("would remove done-1 (completed "), "{out}");
    assert!(out.contains("events, 1 failure, 0 artifacts, 3 log files)"), "{out}");
    assert!(out.contains("would remove gone-1 (cancelled "), "{out}");
    assert!(out.contains("outside-1") && out.contains("1 log outside "), "{out}");
    assert!(out.contains("skipped lease-1 (completed "), "{out}");
    assert!(out.contains("leased by runner-7@ci-host-3 (pid 4242), token #1"), "{out}");
    assert!(out.contains("`buildstate lease break lease-1`"), "{out}");
    assert!(!out.contains("run-1") && !out.contains("open-1") && !out.contains("fixed-1"), "{out}");
    let total = out.lines().last().unwrap_or_default();
    assert!(total.starts_with("would remove 3 builds (") && total.ends_with("; skipped 1"), "{out}");
    assert_eq!(exports(&all), before, "a dry run changed a build");
    assert!(done_logs.iter().all(|l| l.is_file()), "a dry run removed a log");

    let out = env.ok(&["prune", "--completed-before", &cut]);
    assert!(out.contains("removed done-1 (completed "), "{out}");
    assert!(out.contains("events, 1 failure, 0 artifacts, 3 log files)"), "{out}");
    let total = out.lines().last().unwrap_or_default();
    assert!(total.starts_with("removed 3 builds (") && total.ends_with("; skipped 1"), "{out}");
    for gone in [&done, &cancelled, &outside] {
        for args in
            [&["export", gone.as_str()][..], &["history", gone], &["failure", "list", "--build", gone]]
        {
            let err = env.fails(args, 3);
            assert!(err.contains(&format!("no build matches `{gone}`")), "{args:?}: {err}");
        }
    }
    assert!(done_logs.iter().all(|l| !l.exists()), "the logs of a pruned build stay: {done_logs:?}");
    assert!(!env.path("logs/done-1").exists(), "its emptied log directory stays");
    assert!(env.path("logs").is_dir(), "the logs directory itself goes");
    assert!(outside_logs.iter().all(|l| l.is_file()), "a log outside the logs directory was deleted");
    let kept = [&running, &leased, &open, &fixed];
    assert_eq!(exports(&kept), before[3..].to_vec(), "prune changed a build it kept");
    assert!(logs_of(&env, &running).iter().all(|l| l.is_file()), "a kept build's log was deleted");

    // A failed build goes only when asked, and once its failures are resolved.
    let pruned = env.json(&["prune", "--completed-before", &now(), "--status", "failed"]);
    let rows = pruned.as_array().expect("an array");
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["build"].as_str().unwrap_or(""), r["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(summary, [("open-1", "skipped"), ("fixed-1", "removed")], "{pruned}");
    assert!(rows[0]["reason"].as_str().unwrap_or("").contains("1 unresolved failure"), "{pruned}");
    assert_eq!((rows[1]["failures"].as_u64(), rows[1]["log_files"].as_u64()), (Some(1), Some(1)), "{pruned}");
    env.fails(&["export", &fixed], 3);

    // Once its runner's lease is broken, the delivered build goes too.
    env.ok(&["lease", "break", &leased]);
    let out = env.ok(&["prune", "--completed-before", &now()]);
    assert!(out.contains("removed lease-1 (completed "), "{out}");
    let left = env.json(&["build", "list"]);
    let numbers: Vec<&str> =
        left.as_array().expect("an array").iter().filter_map(|b| b["number"].as_str()).collect();
    assert_eq!(numbers, ["open-1", "run-1"], "the open builds are all that is left: {left}");
}

#[test]
fn prune_refuses_running_statuses_and_bad_durations_before_opening_a_store() {
    let env = Env::new();
    for (args, says) in [
        (
            &["prune", "--completed-before", "90d", "--status", "running"][..],
            "running builds are never pruned",
        ),
        (
            &["prune", "--completed-before", "90d", "--status", "completed,pending"],
            "pending builds are never pruned",
        ),
        (&["prune", "--completed-before", "90d", "--status", "done"], "`done` is not a known build status"),
        (&["prune", "--completed-before", "90x"], "`90x` is neither a time nor a duration"),
        (&["prune", "--completed-before", "0d"], "out of range"),
        (&["prune"], "--completed-before"),
    ] {
        let err = env.fails(args, 2);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!env.db.exists(), "a refused prune created a store");
    let err = env.fails(&["prune", "--completed-before", "90d"], 3);
    assert!(err.contains("no store"), "prune needs an existing store: {err}");
}

/// A delivered build with a failure, a retry and an artifact, and 199 copies of it
/// (other ids and numbers), imported through the library: 200 builds in well under a
/// second. Returns the template's document.
fn two_hundred_builds(env: &Env) -> BuildDocument {
    let b = env.build("kill-000");
    env.ok(&["state", "start", &b, "0"]);
    env.ok(&["state", "fail", &b, "0", "--error", "mirror 503", "--class", "transient"]);
    env.ok(&["retry", &b]);
    deliver(env, &b);
    env.ok(&["artifact", "add", &b, "--name", "ami", "--kind", "image", "--uri", "ami-0abc"]);
    let doc: BuildDocument = serde_json::from_str(&env.export(&b)).expect("a document");
    runtime().block_on(async {
        let store = SqliteStore::open(&env.db).expect("open the store");
        for i in 1..200u32 {
            let mut parts = doc.clone().into_parts().expect("valid");
            let ms = u64::try_from(parts.build.created_at.as_millisecond()).expect("after 1970");
            parts.build.id = BuildId::generate(ms, (u128::from(i) << 64) | 0x5eed);
            parts.build.number = BuildNumber::new(&format!("kill-{i:03}")).expect("a number");
            for f in &mut parts.failures {
                f.build_id = parts.build.id;
            }
            store.import_build(parts, ImportMode::CreateOnly).await.expect("import a copy");
        }
    });
    // Each build's attempt logs, where runners write them: `logs/<number>/`.
    for i in 0..200u32 {
        let dir = env.dir.path().join("logs").join(format!("kill-{i:03}"));
        std::fs::create_dir_all(&dir).expect("a build's log directory");
        std::fs::write(dir.join("000-initial-1-e2.log"), "output").expect("a log");
    }
    doc
}

/// After a prune that removes nothing has finished what a killed one left aside, every
/// build that is there has its log directory and every build that is gone has none.
fn logs_whole_or_gone(env: &Env) {
    env.ok(&["prune", "--completed-before", "2000-01-01"]);
    let logs = env.dir.path().join("logs");
    let present = |i: u32| {
        runtime().block_on(async {
            let store = SqliteStore::open(&env.db).expect("open the store");
            store.find_build(&format!("kill-{i:03}")).await.is_ok()
        })
    };
    for i in 0..200u32 {
        let dir = logs.join(format!("kill-{i:03}"));
        assert_eq!(dir.join("000-initial-1-e2.log").is_file(), present(i), "the logs of kill-{i:03}");
    }
    let aside: Vec<_> = std::fs::read_dir(&logs)
        .map(|d| {
            d.flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect()
        })
        .unwrap_or_default();
    assert!(aside.is_empty(), "nothing is left aside: {aside:?}");
}

/// Every build is whole (exports with the template's history, failures and artifacts)
/// or gone; returns how many are left.
fn whole_or_gone(env: &Env, template: &BuildDocument) -> usize {
    let left = runtime().block_on(async {
        let store = SqliteStore::open(&env.db).expect("a killed prune leaves a store that opens");
        let listed = store.list_builds(&BuildFilter::default()).await.expect("list builds");
        let mut whole = 0;
        for i in 0..200u32 {
            let number = format!("kill-{i:03}");
            match store.find_build(&number).await {
                Err(StoreError::BuildNotFound(_)) => {}
                Ok(b) => {
                    let doc = store.export_build(b.id).await.expect("export a build that is there");
                    assert_eq!(
                        (doc.history.len(), doc.errors.len(), doc.artifacts.len()),
                        (template.history.len(), template.errors.len(), template.artifacts.len()),
                        "{number} is there but not whole"
                    );
                    assert_eq!(store.history(b.id).await.expect("history").len(), doc.history.len());
                    whole += 1;
                }
                Err(e) => panic!("reading {number} after a kill: {e}"),
            }
        }
        assert_eq!(listed.len(), whole, "the listing and the builds that are there agree");
        whole
    });
    env.ok(&["build", "list"]);
    left
}

/// A value in `0..n` that differs from run to run (the clock's nanoseconds).
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::from(nanos.subsec_nanos()) % n.max(1)
}

#[test]
fn prune_killed_at_random_instants_leaves_every_build_whole_or_gone() {
    let env = Env::new().with_catalog();
    let template = two_hundred_builds(&env);
    let cut = now();
    let mut left = whole_or_gone(&env, &template);
    assert_eq!(left, 200);
    for round in 0..4 {
        let mut child = bare_std_cmd()
            .env("BUILDSTATE_DB", &env.db)
            .args(["prune", "--completed-before", &cut])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prune");
        // Somewhere in the middle: after a random number of builds went, at a random
        // instant within the next one's transaction or between two.
        let wait_for = 1 + random_below(40);
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut seen = 0;
        while seen < wait_for && lines.next().is_some_and(|l| l.is_ok()) {
            seen += 1;
        }
        std::thread::sleep(Duration::from_micros(random_below(3000)));
        child.kill().expect("SIGKILL prune");
        child.wait().expect("reap prune");
        let now_left = whole_or_gone(&env, &template);
        assert!(now_left < left, "round {round}: the killed prune removed nothing ({now_left} left)");
        assert!(now_left > 0, "round {round}: the prune finished before it was killed");
        logs_whole_or_gone(&env);
        left = now_left;
    }
    // A prune run to its end finishes the job: nothing half-pruned stands in its way.
    let out = env.ok(&["prune", "--completed-before", &cut]);
    let total = out.lines().last().unwrap_or_default();
    assert!(total.starts_with(&format!("removed {left} build")), "{out}");
    assert_eq!(whole_or_gone(&env, &template), 0);
    logs_whole_or_gone(&env);
}

/// A `logs_dir` set in the config file is where `exec` writes and where `prune` deletes:
/// the same setting for both (a hostile review found prune looked beside the store).
#[test]
fn prune_deletes_logs_in_the_configured_logs_dir() {
    let env = Env::new().with_catalog();
    let logs = env.path("configured-logs");
    let config = env.path("bs.toml");
    std::fs::write(&config, format!("logs_dir = \"{}\"\n", logs.display())).expect("write config");
    let config = config.to_str().expect("utf-8").to_owned();
    let b = env.build("pr-config");
    let r = here(&env, &["--config", &config, "exec", &b, "5", "--", "sh", "-c", "echo building"]);
    assert_eq!(r.code, 0, "{r:?}");
    let written: Vec<PathBuf> = env
        .history(&b)
        .iter()
        .filter_map(|e| e["log"].as_str())
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { env.dir.path().join(p) })
        .collect();
    assert!(
        !written.is_empty() && written.iter().all(|p| p.starts_with(&logs) && p.is_file()),
        "{written:?}"
    );
    deliver(&env, &b);
    let r = here(&env, &["--config", &config, "prune", "--completed-before", &now()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(written.iter().all(|p| !p.exists()), "the configured logs are deleted: {}", r.stdout);
}

/// What a prune killed between moving a build's logs aside and its transaction leaves
/// (`logs/.pruning-<pid>/<number>`) is finished by the next prune: put back for a build
/// that is still there, removed for one that is gone. A live prune's is left alone.
#[test]
fn the_next_prune_finishes_what_a_killed_one_left_aside() {
    let env = Env::new().with_catalog();
    let kept = env.build("aside-kept");
    let logs = env.dir.path().join("logs");
    let dead = logs.join(".pruning-999999999");
    for number in ["aside-kept", "aside-gone"] {
        std::fs::create_dir_all(dead.join(number)).expect("mkdir");
        std::fs::write(dead.join(number).join("005-kickstart-1-e3.log"), "output").expect("write");
    }
    let live = logs.join(format!(".pruning-{}", std::process::id()));
    std::fs::create_dir_all(live.join("someone-elses")).expect("mkdir");
    env.ok(&["prune", "--completed-before", "2000-01-01"]);
    assert!(
        logs.join(&kept).join("005-kickstart-1-e3.log").is_file(),
        "put back for the build that is there"
    );
    assert!(!logs.join("aside-gone").exists() && !dead.exists(), "removed for the build that is gone");
    assert!(live.join("someone-elses").is_dir(), "a running prune's directory is not touched");
}

/// Only a build's own log directory goes: a log file named by hand (`--log`), shared
/// with a build that stays or planted anywhere, is kept and listed, whatever
/// `--logs-dir` says (a hostile review deleted one with `--logs-dir /`).
#[test]
fn logs_named_by_hand_are_never_deleted() {
    let env = Env::new().with_catalog();
    let logs = env.dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let shared = logs.join("shared.log");
    std::fs::write(&shared, "shared").expect("write");
    let precious = env.path("precious.txt");
    std::fs::write(&precious, "precious").expect("write");
    let (old, stays) = (env.build("hand-old"), env.build("hand-stays"));
    for b in [&old, &stays] {
        env.ok(&["state", "start", b, "5"]);
        env.ok(&["state", "complete", b, "5", "--log", shared.to_str().expect("utf-8")]);
    }
    env.ok(&["state", "start", &old, "10"]);
    env.ok(&["state", "complete", &old, "10", "--log", precious.to_str().expect("utf-8")]);
    env.ok(&["build", "cancel", &old, "--reason", "old"]);
    let out = env.json(&["prune", "--completed-before", &now(), "--logs-dir", "/"]);
    assert_eq!(out[0]["action"], "removed", "{out}");
    assert!(shared.is_file() && precious.is_file(), "logs named by hand stay: {out}");
    let kept = out[0]["logs_kept"].as_array().map_or(0, Vec::len);
    assert_eq!(kept, 2, "and are listed: {out}");
}

/// Two prunes at once (two cron jobs): every build goes with its logs, none is left
/// without a build, and nothing stays aside (a hostile review found the prune that lost
/// the race for a build moved its logs back after the other had deleted it).
#[test]
fn two_prunes_at_once_leave_no_logs_without_a_build() {
    let env = Env::new().with_catalog();
    two_hundred_builds(&env);
    let cut = now();
    let spawn = || {
        bare_std_cmd()
            .env("BUILDSTATE_DB", &env.db)
            .current_dir(env.dir.path())
            .args(["prune", "--completed-before", &cut])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start prune")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().expect("prune a"), b.wait_with_output().expect("prune b"));
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    for out in [&a, &b] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("cannot move"), "losing a race for a build's logs is not a warning: {err}");
    }
    let left = runtime().block_on(async {
        let store = SqliteStore::open(&env.db).expect("open");
        store.list_builds(&BuildFilter::default()).await.expect("list").len()
    });
    assert_eq!(left, 0, "between them, the two prunes removed every build");
    logs_whole_or_gone(&env);
}

/// `--dry-run` says how many log files the real run removes: every file in the build's
/// own log directory, recorded in its history or not (it said 0 for files written there
/// by hand, which the real run then removed).
#[test]
fn dry_run_counts_the_log_files_the_prune_removes() {
    let env = Env::new().with_catalog();
    two_hundred_builds(&env);
    let extra = env.dir.path().join("logs").join("kill-007").join("45-1.log");
    std::fs::write(&extra, "written by a step").expect("a log nobody recorded");
    let cut = now();
    let dry = env.ok(&["prune", "--completed-before", &cut, "--dry-run"]);
    let real = env.ok(&["prune", "--completed-before", &cut]);
    let files = |out: &str| -> String {
        let total = out.lines().last().unwrap_or_default();
        total
            .split(", ")
            .find(|p| p.contains("log file"))
            .unwrap_or_default()
            .trim_end_matches(')')
            .to_owned()
    };
    assert_eq!(files(&dry), "201 log files", "{dry}");
    assert_eq!(files(&dry), files(&real), "the dry run predicts the real one:\n{dry}\n{real}");
}
