//! `webhook add|list|remove|deliveries`, and the sender in `buildstate serve`, against a
//! real receiver (Python's `http.server`, verifying signatures with its own HMAC code).

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Env, Runner, expect_error};

const RECEIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cli/webhook_receiver.py");

#[test]
fn webhook_commands_check_what_they_are_given() {
    let env = Env::new().with_catalog();
    let typo = expect_error(
        &env.run(&["webhook", "add", "https://e.com/h", "--events", "faild"]),
        2,
        "unknown event",
    );
    assert!(typo.contains("needs-intervention") && typo.contains("delivered"), "lists the events: {typo}");
    let ftp = expect_error(&env.run(&["webhook", "add", "ftp://e.com/h", "--events", "all"]), 2, "not http");
    assert!(ftp.contains("http://") && ftp.contains("https://"), "{ftp}");
    let secret = "s3cr3t-value";
    let bad = env.run(&["webhook", "add", "https://e.com/h", "--events", "all", "--secret", secret]);
    let said = expect_error(&bad, 2, "a malformed secret");
    assert!(!said.contains(secret), "the secret is never echoed: {said}");
    assert!(env.ok(&["webhook", "list"]).contains("no webhook"), "nothing refused was kept");

    let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRETPATH";
    let printed = env.ok(&["webhook", "add", url, "--events", "failed,delivered", "--format", "slack"]);
    let secret = printed.trim();
    assert!(secret.starts_with("whsec_"), "the secret is printed once: {printed}");
    let list = env.ok(&["webhook", "list"]);
    assert!(
        list.contains("https://hooks.slack.com/services/…") && list.contains("failed,delivered"),
        "{list}"
    );
    assert!(
        !list.contains("SECRETPATH") && !list.contains(secret),
        "no key and no secret in a listing: {list}"
    );
    let listed = env.json(&["webhook", "list"]);
    let id = listed[0]["id"].as_str().expect("an id").to_owned();
    assert!(!listed.to_string().contains(secret) && !listed.to_string().contains("SECRETPATH"), "{listed}");
    expect_error(
        &env.run(&["webhook", "add", url, "--events", "all", "--format", "slack"]),
        5,
        "one per URL",
    );
    expect_error(&env.run(&["webhook", "remove", "0123456789ab"]), 3, "an unknown id");
    expect_error(&env.run(&["webhook", "deliveries", "not-an-id"]), 2, "a malformed id");
    let b = env.build("wh-1");
    env.ok(&["state", "start", &b, "5"]);
    env.ok(&["state", "fail", &b, "5", "--type", "test", "--error", "it broke"]);
    let deliveries = env.json(&["webhook", "deliveries", &id]);
    assert_eq!(deliveries.as_array().map(Vec::len), Some(1), "only `failed` is queued: {deliveries}");
    assert_eq!(deliveries[0]["state"], "pending");
    let removed = env.run(&["webhook", "remove", &id]);
    assert_eq!(removed.code, 0, "{}", removed.transcript());
    assert!(
        removed.stderr.contains("removed webhook"),
        "a notice, which --quiet drops: {}",
        removed.transcript()
    );
    assert!(env.ok(&["webhook", "list"]).contains("no webhook"));
}

#[test]
fn a_json_file_store_refuses_webhooks_and_says_what_to_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env::with_db(&format!("file://{}", dir.path().join("j").display()));
    let env = Env { dir, ..env };
    env.ok(&["init", "--sample"]);
    let said = expect_error(&env.run(&["webhook", "add", "https://e.com/h", "--events", "all"]), 2, "files");
    assert!(said.contains("SQLite or PostgreSQL"), "{said}");
}

/// The receiver process, killed when the test ends or panics.
struct Receiver(std::process::Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_receiver(env: &Env, secret: &str, refuse_first: u32) -> (Receiver, u16) {
    let port_file = env.path("receiver.port");
    let child = std::process::Command::new("python3")
        .args([
            RECEIVER,
            port_file.to_str().expect("utf-8"),
            env.path("received.jsonl").to_str().expect("utf-8"),
        ])
        .args([secret, &refuse_first.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 runs the receiver");
    let receiver = Receiver(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(port) = std::fs::read_to_string(&port_file)
            && let Ok(port) = port.trim().parse()
        {
            return (receiver, port);
        }
        assert!(Instant::now() < deadline, "the receiver did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_server(env: &Env, label: &str) -> Runner {
    let mut c = env.std_cmd();
    let (stdout, stderr) = (env.path(&format!("{label}.stdout")), env.path(&format!("{label}.stderr")));
    c.args(["serve", "--listen", "127.0.0.1:0"])
        // 5 s, 10 s, 20 s… become 100 ms, 200 ms, 400 ms.
        .env("BUILDSTATE_WEBHOOK_BACKOFF_SCALE", "0.02")
        .env("BUILDSTATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"));
    Runner::new(c.spawn().expect("start the server"), label, stdout, stderr)
}

fn received(env: &Env) -> Vec<Value> {
    std::fs::read_to_string(env.path("received.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The test: a receiver that verifies signatures and refuses the first three
/// deliveries, the server killed and started again in between, transitions recorded
/// by the CLI on the store directly both while it runs and while it is down: every
/// event arrives, signed, and each id once after dedupe.
#[test]
fn every_event_arrives_signed_through_refusals_and_a_server_restart() {
    let env = Env::new().with_catalog();
    // Given, not drawn: the receiver needs it before the endpoint (which needs the
    // receiver's port) is added.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (_receiver, port) = spawn_receiver(&env, secret, 3);
    let url = format!("http://127.0.0.1:{port}/hooks/buildstate");
    env.ok(&["webhook", "add", &url, "--events", "all", "--secret", secret]);

    let mut server = spawn_server(&env, "server-1");
    let b = env.build("wh-live");
    env.ok(&["state", "start", &b, "5"]);
    env.ok(&["state", "complete", &b, "5"]);
    wait_for("the first deliveries to be tried", Duration::from_secs(30), || received(&env).len() >= 4);
    // Killed at once, with whatever it had claimed and not recorded still held.
    server.kill();

    // Recorded while no server runs: queued in the store, sent after the restart.
    env.ok(&["state", "start", &b, "10"]);
    env.ok(&["state", "fail", &b, "10", "--type", "test", "--error", "broke while the server was down"]);
    let c = env.build("wh-down");
    env.ok(&["build", "cancel", &c, "--reason", "not needed"]);

    let mut again = spawn_server(&env, "server-2");
    let expected: BTreeSet<String> = env
        .json(&["webhook", "deliveries", "--limit", "1000"])
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["event_id"].as_str().expect("an id").to_owned())
        .collect();
    assert!(expected.len() >= 8, "created, started, completed, failed, cancelled…: {expected:?}");
    // A delivery the killed server had claimed is held for 60 s before it is sent again.
    // Received is not enough: the killed server may have sent one and died before
    // recording it, so it is sent again after the hold (at least once, same id).
    wait_for("every event to be delivered and recorded", Duration::from_secs(150), || {
        let got: BTreeSet<String> = received(&env)
            .iter()
            .filter(|r| r["status"] == 204)
            .map(|r| r["id"].as_str().unwrap_or("").to_owned())
            .collect();
        got == expected && {
            std::thread::sleep(Duration::from_millis(200));
            let recorded = env.json(&["webhook", "deliveries", "--limit", "1000"]);
            recorded.as_array().is_some_and(|all| all.iter().all(|d| d["state"] == "delivered"))
        }
    });
    let all = received(&env);
    assert!(all.iter().all(|r| r["signed"] == true), "every request verified: {all:?}");
    assert_eq!(all.iter().filter(|r| r["status"] == 503).count(), 3, "the first three were refused");
    let states = env.json(&["webhook", "deliveries", "--limit", "1000"]);
    assert!(
        states.as_array().expect("a list").iter().all(|d| d["state"] == "delivered"),
        "every delivery is recorded as delivered: {states}"
    );
    let refused =
        states.as_array().expect("a list").iter().filter(|d| d["attempt_count"].as_u64() > Some(1)).count();
    assert!(refused >= 1, "a refused delivery was tried again: {states}");
    let table = env.ok(&["webhook", "deliveries"]);
    assert!(table.contains("HTTP 204") && table.contains("delivered"), "{table}");
    let log = std::fs::read_to_string(env.path("server-2.stderr")).unwrap_or_default();
    assert!(!log.contains(secret) && !log.contains("/hooks/buildstate"), "no secret or path in logs");
    again.signal("TERM");
    assert_eq!(again.wait(Duration::from_secs(20)), 0, "{}", again.output());
}

/// From a hostile review: `import --replace` numbers a build's events again from where
/// the document left off; the transitions after it are queued all the same, under new
/// ids (a receiver dropping repeated ids would have dropped them).
#[test]
fn transitions_after_an_import_replace_are_queued_under_new_ids() {
    let env = Env::new().with_catalog();
    env.ok(&["webhook", "add", "https://e.com/h", "--events", "completed,failed"]);
    let b = env.build("wh-imp");
    env.ok(&["state", "start", &b, "0"]);
    let doc = env.path("b.json");
    env.ok(&["export", &b, "--output", doc.to_str().expect("utf-8")]);
    env.ok(&["state", "complete", &b, "0"]);
    env.ok(&["import", doc.to_str().expect("utf-8"), "--replace"]);
    env.ok(&["state", "complete", &b, "0"]);
    let all = env.json(&["webhook", "deliveries"]);
    let ids: BTreeSet<&str> =
        all.as_array().expect("a list").iter().filter_map(|d| d["event_id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "both completions are queued, under two ids: {all}");
}

/// From a hostile review: `all` beside a typo is still a typo.
#[test]
fn a_typo_beside_all_is_refused() {
    let env = Env::new().with_catalog();
    let said =
        expect_error(&env.run(&["webhook", "add", "https://e.com/h", "--events", "all,bogus"]), 2, "typo");
    assert!(said.contains("bogus"), "{said}");
}
