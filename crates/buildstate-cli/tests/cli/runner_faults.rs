//! The runner under faults: killed with SIGKILL at random moments, stopped by SIGINT
//! and SIGTERM, and steps that outlive their timeout. Steps' grandchildren must die
//! with them, and the store must stay consistent for the next run to resume.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{
    Env, Mark, assert_each_completed_once, attempts, default_codes, eventually, process_alive, read,
    step_pipeline, summary_builds,
};

/// A small linear congruential generator: reproducible kill delays without a dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The default seed; `BUILDSTATE_TEST_SEED=N` tries others.
const SEED: u64 = 0x6275_696c_6473_7461;

/// The command line of the grandchild the hanging steps leave behind.
const GRANDCHILD: &str = "sleep 300";

/// Waits until every lease is expired or released (a killed runner's lease lives on for
/// its ttl), so that the next runner takes the build over instead of being refused.
fn wait_for_expiry(env: &Env) {
    let free = eventually(Duration::from_secs(30), || {
        env.json(&["lease", "list"]).as_array().is_some_and(|l| l.iter().all(|l| l["expired"] == true))
    });
    assert!(free, "a dead runner's lease never expired: {}", env.json(&["lease", "list"]));
}

#[test]
fn random_kills_of_the_runner_always_end_delivered_with_consistent_history() {
    let seed = std::env::var("BUILDSTATE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let mut rng = Lcg(seed);
    let env = Env::new().with_catalog();
    let mut abandoned = 0;
    let mut delays = Vec::new();
    for round in 0..5 {
        let name = format!("kill-{round}");
        let pipeline = env.pipeline(&name, &step_pipeline(&name, &["base"], &[("STEP_SLEEP", "0.05")]));
        // 21 steps of 50 ms take over a second: kill somewhere in the middle of it. In
        // some rounds the runner that takes the build over is killed too.
        let kills = 1 + rng.below(2);
        let mut round_delays = Vec::new();
        for kill in 0..kills {
            if kill > 0 {
                wait_for_expiry(&env);
            }
            let delay =
                Duration::from_millis(if kill == 0 { 150 + rng.below(1100) } else { 50 + rng.below(600) });
            round_delays.push(delay);
            let mut runner = env.spawn_run(&format!("{name}-killed-{kill}"), &pipeline, &[]);
            std::thread::sleep(delay);
            runner.kill();
        }
        delays.push(round_delays);

        // Re-run until delivered: a run that finds the dead runner's lease unexpired
        // says so and exits 8.
        let deadline = Instant::now() + Duration::from_secs(60);
        let b = loop {
            let (code, summary, r) = env.run_pipeline(&pipeline, &[]);
            let builds = summary_builds(&summary);
            assert_eq!(builds.len(), 1, "seed {seed}, round {round}: {summary}");
            let (b, row) = &builds[0];
            if code == 0 {
                assert_eq!(row["state"].as_u64(), Some(100), "{row}");
                break b.clone();
            }
            assert_eq!(code, 8, "seed {seed}, round {round}: {r:?}");
            assert!(
                row["note"].as_str().is_some_and(|n| n.contains("is running it")),
                "seed {seed}, round {round}: a re-run stops short only while the killed runner's lease lasts: {row}"
            );
            assert!(Instant::now() < deadline, "seed {seed}, round {round}: never delivered: {r:?}");
            std::thread::sleep(Duration::from_millis(200));
        };

        let what = format!("seed {seed}, round {round} (killed after {:?}), build {b}", delays[round]);
        let build = env.show(&b);
        assert_eq!(
            (build["state"].as_u64(), build["status"].as_str()),
            (Some(100), Some("completed")),
            "{what}"
        );
        let history = env.history(&b);
        let tried = attempts(&history);
        assert_each_completed_once(&history, &what);
        let failed: Vec<_> = tried.iter().filter(|a| a.end == "failed").collect();
        let failures = env.failures(&b);
        assert_eq!(
            failures.len(),
            failed.len(),
            "{what}: a failure record per failed attempt: {failures:#?}"
        );
        for (f, a) in failures.iter().zip(&failed) {
            assert_eq!(
                (f["state"].as_u64(), f["attempt"].as_u64(), f["type"].as_str(), f["class"].as_str()),
                (Some(a.state), Some(a.attempt), Some("interrupted"), Some("transient")),
                "{what}: an abandoned attempt is recorded as interrupted: {f}"
            );
        }
        abandoned += failed.len();

        let export = env.json(&["export", &b]);
        assert_eq!(export["history"], serde_json::Value::Array(history), "{what}: export and history agree");
        assert_eq!(export["errors"].as_array().map(Vec::len), Some(failures.len()), "{what}");
        assert_eq!(
            (export["current_state"].as_u64(), export["status"].as_str()),
            (Some(100), Some("completed"))
        );
    }
    assert!(
        abandoned > 0,
        "seed {seed}: no kill landed during an attempt (delays {delays:?}), so nothing was abandoned"
    );
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]), "every lease was released");
}

#[test]
fn a_timeout_kills_the_step_and_its_grandchildren() {
    let env = Env::new().with_catalog();
    let yaml = r#"name: slow
matrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}
states:
  0:
    run: [sh, -c, 'sleep 300 & echo $! > grandchild.pid; sleep 300']
    timeout: 1s
    retry: {max_attempts: 1}
"#;
    let pipeline = env.write("slow.yml", yaml);
    let started = Instant::now();
    let (code, summary, r) = env.run_pipeline(&pipeline, &[]);
    let took = started.elapsed();
    assert_eq!(code, 8, "{r:?}");
    assert!(took < Duration::from_secs(30), "a 1s timeout ended the run only after {took:?}");
    let (b, _) = summary_builds(&summary).remove(0);

    let failures = env.failures(&b);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let f = &failures[0];
    assert_eq!(
        (f["state"].as_u64(), f["type"].as_str(), f["class"].as_str(), f["exit_code"].as_i64()),
        (Some(0), Some("timeout"), Some("transient"), None),
        "{f}"
    );
    let build = env.show(&b);
    assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(0), Some("failed")), "{build}");

    let pid: u32 = read(&env.path("grandchild.pid")).trim().parse().expect("a pid");
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(pid, GRANDCHILD)),
        "the step's grandchild {pid} survived the timeout"
    );
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]), "the lease was released");
}

/// `signal` to a runner whose step at 15 hangs with a grandchild: the runner stops the
/// step's process group (with SIGKILL after the grace period if the step is
/// `stubborn`), records the attempt as interrupted, releases its lease and exits
/// `exit`; the next run resumes at 15.
fn a_signal_stops_the_run_and_the_next_run_resumes(signal: &str, number: u64, exit: i32, stubborn: bool) {
    let env = Env::new().with_catalog();
    let name = format!("sig-{}", signal.to_lowercase());
    let pipeline = env.pipeline(&name, &step_pipeline(&name, &["base"], &[]));
    env.write("hang-15", "");
    if stubborn {
        env.write("stubborn", "");
    }
    let mut runner = env.spawn_run("runner", &pipeline, &[]);
    let pid_file = env.path("grandchild.pid");
    assert!(
        eventually(Duration::from_secs(60), || pid_file.exists() || !runner.running()),
        "step 15 never started: {}",
        runner.output()
    );
    assert!(pid_file.exists(), "the runner ended before step 15 hung: {}", runner.output());
    let grandchild: u32 = read(&pid_file).trim().parse().expect("a pid");
    assert!(process_alive(grandchild, GRANDCHILD), "the grandchild {grandchild} is running");

    runner.signal(signal);
    let code = runner.wait(Duration::from_secs(30));
    assert_eq!(code, exit, "{}", runner.output());
    let summary = runner.json();
    assert_eq!(summary["interrupted"].as_u64(), Some(number), "{summary}");
    let (b, row) = summary_builds(&summary).remove(0);
    assert_eq!(row["state"].as_u64(), Some(15), "{row}");

    let build = env.show(&b);
    assert_eq!(
        (build["state"].as_u64(), build["status"].as_str(), build["attempt_open"].as_bool()),
        (Some(15), Some("failed"), Some(false)),
        "{build}"
    );
    let failures = env.failures(&b);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let f = &failures[0];
    assert_eq!(
        (f["state"].as_u64(), f["attempt"].as_u64(), f["type"].as_str(), f["class"].as_str()),
        (Some(15), Some(1), Some("interrupted"), Some("transient")),
        "{f}"
    );
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]), "the lease was released");
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(grandchild, GRANDCHILD)),
        "the step's grandchild {grandchild} survived SIG{signal}"
    );

    std::fs::remove_file(env.path("hang-15")).expect("remove hang-15");
    let (code, summary, r) = env.run_pipeline(&pipeline, &[]);
    assert_eq!(code, 0, "{r:?}");
    let (_, row) = summary_builds(&summary).remove(0);
    assert_eq!(row["resumed_at"].as_u64(), Some(15), "{row}");
    let mut expected = Vec::new();
    for s in default_codes() {
        if s == 15 {
            expected.extend([Mark::start(&b, 15, 1), Mark::start(&b, 15, 2), Mark::done(&b, 15, 2)]);
        } else {
            expected.extend([Mark::start(&b, s, 1), Mark::done(&b, s, 1)]);
        }
    }
    assert_eq!(env.marks_of(&b), expected, "only 15 ran again, then the rest");
    let history = env.history(&b);
    attempts(&history);
    assert_each_completed_once(&history, &b);
}

#[test]
fn sigint_stops_the_run_with_130_and_the_next_run_resumes() {
    a_signal_stops_the_run_and_the_next_run_resumes("INT", 2, 130, false);
}

/// The step ignores SIGTERM, and so does its grandchild: SIGKILL ends them after the grace.
#[test]
fn sigterm_stops_the_run_with_143_and_the_next_run_resumes() {
    a_signal_stops_the_run_and_the_next_run_resumes("TERM", 15, 143, true);
}

/// A signal while the runner waits out a retry's backoff stops the run at once: the
/// failed attempt stays recorded, nothing more is, and the lease is released.
#[test]
fn a_signal_during_the_retry_backoff_stops_the_run_at_once() {
    let env = Env::new().with_catalog();
    let yaml = r#"name: backoff
matrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}
states:
  0:
    run: 'echo "$BUILDSTATE_ATTEMPT" >> tries.log; [ -e fixed ] || exit 75'
    retry:
      max_attempts: 3
      backoff: {kind: fixed, delay: 1h}
      transient: {exit_codes: [75]}
"#;
    let pipeline = env.write("backoff.yml", yaml);
    let started = Instant::now();
    let mut runner = env.spawn_run("runner", &pipeline, &[]);
    let failed = eventually(Duration::from_secs(60), || {
        !env.json(&["failure", "list"]).as_array().is_none_or(Vec::is_empty) || !runner.running()
    });
    assert!(failed && runner.running(), "the runner should be waiting to retry: {}", runner.output());
    runner.signal("INT");
    assert_eq!(runner.wait(Duration::from_secs(30)), 130, "{}", runner.output());
    assert!(started.elapsed() < Duration::from_secs(60), "the 1h backoff was not waited out");

    let (b, _) = summary_builds(&runner.json()).remove(0);
    let build = env.show(&b);
    assert_eq!(
        (build["state"].as_u64(), build["status"].as_str(), build["needs_intervention"].as_bool()),
        (Some(0), Some("failed"), Some(false)),
        "a transient failure with retries left: {build}"
    );
    let failures = env.failures(&b);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(
        (failures[0]["exit_code"].as_i64(), failures[0]["class"].as_str()),
        (Some(75), Some("transient"))
    );
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]), "the lease was released");

    env.write("fixed", "");
    let (code, _, r) = env.run_pipeline(&pipeline, &[]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(read(&env.path("tries.log")), "1\n2\n", "one attempt per run");
}

/// Whether a write transaction can start now. `state complete REF 100` needs the write
/// lock and is then refused (the build is leased, or not at 100), changing nothing.
fn write_lock_free(env: &Env, build: &str) -> bool {
    let mut probe = env
        .std_cmd()
        .args(["state", "complete", build, "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the probe");
    let done = eventually(Duration::from_secs(3), || probe.try_wait().is_ok_and(|s| s.is_some()));
    if !done {
        let _ = probe.kill();
    }
    let _ = probe.wait();
    done
}

/// A runner paused past its lease's expiry (a stopped VM, a long GC pause) wakes up
/// while its successor runs the build: it stops its step (grandchild included), and
/// nothing it does lands in the build's record after the take-over.
#[test]
fn a_paused_runner_that_wakes_up_after_a_take_over_writes_nothing() {
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("pause", &step_pipeline("pause", &["base"], &[]));
    env.write("hang-15", "");
    let mut paused = env.spawn_run("paused", &pipeline, &[]);
    let pid_file = env.path("grandchild.pid");
    let hung = eventually(Duration::from_secs(60), || pid_file.exists() || !paused.running());
    assert!(hung && paused.running(), "the first runner should hang at 15: {}", paused.output());
    let grandchild: u32 = read(&pid_file).trim().parse().expect("a pid");
    let b = env.json(&["build", "list"])[0]["number"].as_str().expect("a build number").to_owned();
    // Paused inside a transaction (a heartbeat), it would hold the store's write lock and
    // stall everybody: that is SQLite's nature, not what this test is about. Try again.
    let mut pauses = 0;
    loop {
        paused.signal("STOP");
        if write_lock_free(&env, &b) {
            break;
        }
        pauses += 1;
        assert!(pauses < 10, "the paused runner always held the write lock");
        paused.signal("CONT");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(env.path("hang-15")).expect("remove hang-15");
    wait_for_expiry(&env);

    let mut successor = env.spawn_run("successor", &pipeline, &[]);
    let took_over = eventually(Duration::from_secs(60), || {
        env.json(&["lease", "list"]).as_array().is_some_and(|l| l.iter().any(|l| l["owner"] == "successor"))
            || !successor.running()
    });
    assert!(took_over, "the successor never took the lease: {}", successor.output());
    paused.signal("CONT");
    let code = paused.wait(Duration::from_secs(30));
    assert!(code == 0 || code == 8, "{}", paused.output());
    let (_, row) = summary_builds(&paused.json()).remove(0);
    assert!(
        row["note"].as_str().is_some_and(|n| n.contains("lease")),
        "the woken runner says it lost the lease: {row}"
    );
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(grandchild, GRANDCHILD)),
        "the woken runner left its step's grandchild {grandchild} running"
    );
    assert_eq!(successor.wait(Duration::from_secs(60)), 0, "{}", successor.output());

    let history = env.history(&b);
    attempts(&history);
    assert_each_completed_once(&history, &b);
    let take_over = history
        .iter()
        .position(|e| e["actor"] == "successor")
        .unwrap_or_else(|| panic!("the successor recorded nothing: {history:#?}"));
    let first = &history[take_over];
    assert_eq!(
        (first["kind"].as_str(), first["state"].as_u64()),
        (Some("failed"), Some(15)),
        "the successor first closes the abandoned attempt: {first}"
    );
    let late: Vec<_> = history[take_over..].iter().filter(|e| e["actor"] == "paused").collect();
    assert!(late.is_empty(), "the paused runner wrote after the take-over: {late:#?}");
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]));
}

/// The process group of `pid`, from `/proc/PID/stat` (the field after the state and ppid).
fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(2)?.parse().ok()
}

/// A runner killed with SIGKILL cannot stop its step. Its build is taken over once the
/// lease expires, and from then on the dead runner's step must not run on beside the
/// successor's attempt at the same milestone (SPEC §3: two runners never run one build
/// at the same time) — else the records say attempt 1 ended when attempt 2 started
/// while its processes go on (a second `packer build`, a second upload).
#[test]
fn a_killed_runners_step_does_not_run_on_after_the_take_over() {
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("orphan", &step_pipeline("orphan", &["base"], &[]));
    env.write("hang-15", "");
    let mut runner = env.spawn_run("killed", &pipeline, &[]);
    let pid_file = env.path("grandchild.pid");
    let hung = eventually(Duration::from_secs(60), || pid_file.exists() || !runner.running());
    assert!(hung && runner.running(), "the runner should hang at 15: {}", runner.output());
    let grandchild: u32 = read(&pid_file).trim().parse().expect("a pid");
    let group = process_group(grandchild).expect("the step's process group");
    runner.kill();
    std::fs::remove_file(env.path("hang-15")).expect("remove hang-15");
    wait_for_expiry(&env);

    let (code, summary, r) = env.run_pipeline(&pipeline, &[]);
    assert_eq!(code, 0, "{r:?}");
    let (b, _) = summary_builds(&summary).remove(0);
    let failures = env.failures(&b);
    assert_eq!(
        failures.iter().map(|f| (f["state"].as_u64(), f["type"].as_str())).collect::<Vec<_>>(),
        [(Some(15), Some("interrupted"))],
        "the dead runner's attempt is recorded as abandoned"
    );
    let survived = !eventually(Duration::from_secs(5), || !process_alive(grandchild, GRANDCHILD));
    if survived {
        // Leave nothing behind: the orphans would otherwise sleep on for minutes.
        let _ = std::process::Command::new("kill").args(["-s", "KILL", "--", &format!("-{group}")]).status();
    }
    assert!(
        !survived,
        "the killed runner's step (process group {group}, grandchild {grandchild}) was still running \
         after the successor took build {b} over and ran milestone 15 again"
    );
}
