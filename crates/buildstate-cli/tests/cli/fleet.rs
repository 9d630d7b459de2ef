//! Fleet mode with real worker processes: `enqueue` queues 30 builds, three `worker`s
//! share the store, one worker is killed with SIGKILL in the middle of a milestone.
//! Every build must reach 100, no two attempts of one build may overlap in time, and the
//! killed worker's build must be taken over once its lease expires. On PostgreSQL (the
//! fleet store) and on SQLite (one machine, many processes).

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Env, PgDb, attempts, bare_std_cmd, eventually, step_pipeline};

const PIPELINE: &str = r#"name: fleet
matrix:
  platform: [p1, p2, p3, p4, p5]
  os: [o1, o2, o3]
  image: [base, hana]
defaults:
  retry: {max_attempts: 3, backoff: {kind: none}, transient: {exit_codes: [75]}}
states:
  0: {run: "sleep 0.05"}
  20: {run: "sleep 0.1"}
  45: {run: "sleep 1"}
  70: {run: "sleep 0.1"}
  100: {run: "true"}
"#;

fn catalog(env: &Env) {
    for p in ["p1", "p2", "p3", "p4", "p5"] {
        env.ok(&["platform", "add", p, "--provider", "aws"]);
    }
    for o in ["o1", "o2", "o3"] {
        env.ok(&["os", "add", o, "--family", "rhel", "--major", "9"]);
    }
    env.ok(&["image-type", "add", "base"]);
    env.ok(&["image-type", "add", "hana"]);
}

fn worker(env: &Env, name: &str, pipeline: &std::path::Path) -> Child {
    let log = std::fs::File::create(env.path(&format!("{name}.log"))).expect("log");
    let mut c = env.std_cmd();
    c.args(["worker", pipeline.to_str().expect("utf-8"), "--name", name, "--exit-when-idle"])
        .args(["--poll", "200ms", "--lease-ttl", "3s", "--grace", "1s"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    c.spawn().expect("start worker")
}

/// An event of w1's: its own name, or through a server `w1 via token:…`.
fn by_w1(e: &Value) -> bool {
    e["actor"].as_str().is_some_and(|a| a == "w1" || a.starts_with("w1 via "))
}

fn three_workers_thirty_builds_one_killed(env: &Env) {
    catalog(env);
    let pipeline = env.write("fleet.yml", PIPELINE);
    let queued = env.json(&["enqueue", pipeline.to_str().expect("utf-8")]);
    assert_eq!(queued.as_array().map(Vec::len), Some(30), "{queued}");

    let mut workers: Vec<Child> = ["w1", "w2", "w3"].iter().map(|n| worker(env, n, &pipeline)).collect();
    // Kill w1 while it is in the middle of a milestone: it holds a build's lease and an
    // attempt of that build is open (a step is running).
    let mut victim_build = String::new();
    let busy = eventually(Duration::from_secs(60), || {
        let running = env.json(&["workers"]);
        let held = running.as_array().into_iter().flatten().find(|w| w["worker"] == "w1");
        let Some(b) = held.and_then(|w| w["builds"][0].as_str()) else { return false };
        let shown = env.json(&["build", "show", b]);
        // Milestone 45 runs for a second: killing w1 in it leaves an attempt open.
        if shown["build"]["attempt_open"] == true && shown["build"]["state"] == 45 {
            victim_build = b.to_owned();
            true
        } else {
            false
        }
    });
    assert!(busy, "w1 never ran a step");
    workers[0].kill().expect("SIGKILL w1");
    let _ = workers[0].wait();

    let deadline = Instant::now() + Duration::from_secs(120);
    for w in workers.iter_mut().skip(1) {
        loop {
            if let Some(status) = w.try_wait().expect("wait") {
                assert_eq!(status.code(), Some(0), "a surviving worker failed");
                break;
            }
            assert!(Instant::now() < deadline, "workers did not finish the queue");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let builds = env.json(&["build", "list"]);
    let builds = builds.as_array().expect("list");
    assert_eq!(builds.len(), 30);
    let mut ran_by: BTreeMap<String, usize> = BTreeMap::new();
    for b in builds {
        let number = b["number"].as_str().expect("number");
        assert_eq!((b["state"].as_u64(), b["status"].as_str()), (Some(100), Some("completed")), "{number}");
        let history = env.history(number);
        // No two attempts of one build overlap in time (attempts() also checks that
        // every attempt was closed exactly once and seq has no gaps).
        let mut tried = attempts(&history);
        tried.sort_by_key(|a| a.started);
        for pair in tried.windows(2) {
            assert!(pair[0].closed <= pair[1].started, "{number}: overlapping attempts {pair:?}");
        }
        for e in history.iter().filter(|e| e["kind"] == "started") {
            *ran_by.entry(e["actor"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        }
    }
    // The killed worker's build: w1 started an attempt, another worker took over after
    // the lease expired and closed w1's attempt as interrupted.
    let history: Vec<Value> = env.history(&victim_build);
    let last_w1 = history.iter().rposition(|e| by_w1(e) && e["kind"] == "started").expect("w1 started");
    assert!(
        history[last_w1..].iter().any(|e| e["kind"] == "completed" && !by_w1(e)),
        "{victim_build} was not taken over: {history:#?}"
    );
    let failures = env.failures(&victim_build);
    assert!(failures.iter().any(|f| f["type"] == "interrupted"), "{victim_build}: {failures:#?}");
    assert!(ran_by.len() >= 2, "the work was shared: {ran_by:?}");
}

#[test]
fn fleet_on_postgres_three_workers_thirty_builds_one_killed() {
    let db = PgDb::new();
    let env = Env::with_db(&db.url);
    three_workers_thirty_builds_one_killed(&env);
}

#[test]
fn fleet_on_sqlite_three_workers_thirty_builds_one_killed() {
    let env = Env::new();
    three_workers_thirty_builds_one_killed(&env);
}

/// The fleet with every worker working through `buildstate serve` (a token, no
/// database): leases, heartbeats, the registry and the take-over of the killed
/// worker's build all go through the API.
#[test]
fn fleet_through_the_server_three_workers_thirty_builds_one_killed() {
    let env = Env::served();
    three_workers_thirty_builds_one_killed(&env);
}

#[test]
fn workers_with_nothing_running() {
    let env = Env::new();
    env.ok(&["init"]);
    let out = bare_std_cmd().args(["workers"]).env("BUILDSTATE_DB", &env.db).output().expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no worker seen in the last 24 hours");
    assert_eq!(env.json(&["workers"]), Value::Array(Vec::new()));
}

/// The worker registry with real processes: a busy worker and an idle one are listed
/// (the idle one holds no lease), a worker killed with SIGKILL turns stale after three
/// of its heartbeats (1 s with a 3 s lease ttl), one stopped with SIGTERM is listed as
/// exited, and a `run` holding a lease is listed beside them.
#[test]
fn workers_lists_idle_stale_and_exited_workers() {
    let env = Env::new().with_catalog();
    let pipeline = env.pipeline("reg", &step_pipeline("reg", &["base"], &[]));
    // The step at 10 hangs: the build stays busy for as long as the test needs.
    env.write("hang-10", "");
    let queued = env.json(&["enqueue", pipeline.to_str().expect("utf-8")]);
    let number = queued[0]["number"].as_str().expect("a queued build").to_owned();
    let worker = |name: &str| {
        let p = pipeline.to_str().expect("utf-8");
        env.spawn(
            name,
            &["worker", p, "--name", name, "--poll", "200ms", "--lease-ttl", "3s", "--grace", "1s"],
        )
    };
    let mut busy = worker("w-busy");
    let seen = |name: &str, state: &str| -> Option<Value> {
        let listed = env.json(&["workers"]);
        listed.as_array()?.iter().find(|w| w["worker"] == name && w["state"] == state).cloned()
    };
    assert!(eventually(Duration::from_secs(30), || seen("w-busy", "running").is_some()), "{}", busy.output());
    let mut idle = worker("w-idle");
    assert!(eventually(Duration::from_secs(30), || seen("w-idle", "idle").is_some()), "{}", idle.output());

    let running = seen("w-busy", "running").expect("listed");
    assert_eq!(running["build"], number.as_str(), "{running}");
    assert_eq!(running["builds"], serde_json::json!([number]), "its lease, too");
    assert_eq!(
        (running["kind"].as_str(), running["pid"].as_u64()),
        (Some("worker"), Some(u64::from(busy.pid())))
    );
    assert_eq!((running["heartbeat_ms"].as_u64(), running["stale"].as_bool()), (Some(1000), Some(false)));
    let waiting = seen("w-idle", "idle").expect("listed");
    assert_eq!((waiting["build"].is_null(), waiting["builds"].as_array().map(Vec::len)), (true, Some(0)));
    let table = env.ok(&["workers"]);
    let row =
        |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {table}"));
    assert!(table.starts_with("WORKER "), "{table}");
    assert!(row("w-busy").contains(&number) && row("w-busy").ends_with(" live"), "{table}");
    assert!(row("w-idle").contains(" idle ") && row("w-idle").contains(" ago "), "{table}");

    // Killed: it cannot say goodbye, so it goes stale once three heartbeats are missed.
    idle.kill();
    assert!(
        eventually(Duration::from_secs(15), || seen("w-idle", "stale").is_some()),
        "w-idle never went stale"
    );
    let stale = seen("w-idle", "stale").expect("listed");
    assert!(stale["last_seen_secs"].as_u64() >= Some(3), "{stale}");
    assert!(env.ok(&["workers"]).lines().any(|l| l.starts_with("w-idle") && l.ends_with(" stale")));

    // Stopped by SIGTERM: the step is stopped and recorded, and the worker says goodbye.
    busy.signal("TERM");
    assert_eq!(busy.wait(Duration::from_secs(30)), 0, "{}", busy.output());
    let gone = seen("w-busy", "exited").expect("an exited worker is still listed");
    assert_eq!((gone["build"].is_null(), gone["stale"].as_bool()), (true, Some(false)), "{gone}");
    assert!(gone["exited_at"].is_string(), "{gone}");
    let table = env.ok(&["workers"]);
    assert!(
        table.lines().any(|l| l.starts_with("w-busy") && l.contains(" - ") && l.ends_with(" exited")),
        "{table}"
    );

    // A `run` is no worker, but its lease shows who runs the build.
    let mut run = env.spawn_run("r-1", &pipeline, &[]);
    assert!(
        eventually(Duration::from_secs(30), || seen("r-1", "running").is_some_and(|r| r["kind"] == "runner")),
        "{}",
        run.output()
    );
    assert_eq!(seen("r-1", "running").expect("listed")["build"], number.as_str());
    run.signal("TERM");
    run.wait(Duration::from_secs(30));
}
