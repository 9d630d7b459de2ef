//! Object-storage copies through the CLI: `--sync URL` copies every change, a fresh
//! machine continues with `resume --from URL`, a newer remote copy is never
//! overwritten, and an unreachable endpoint neither blocks nor loses a transition.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::Env;

fn s3_endpoint() -> String {
    std::env::var("BUILDSTATE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "BUILDSTATE_TEST_S3_ENDPOINT is not set: run `source scripts/services.sh && start_services` first"
        )
    })
}

/// The AWS variables a machine talking to the S3 emulator has.
fn with_s3(mut c: std::process::Command, endpoint: &str) -> std::process::Command {
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "buildstate-test")
        .env("AWS_SECRET_ACCESS_KEY", "buildstate-test")
        .env("AWS_REGION", "us-east-1");
    c
}

fn run(mut c: Command, args: &[&str]) -> (i32, String, String) {
    let out = c.args(args).output().expect("run buildstate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn state_of(env: &Env, b: &str) -> u64 {
    env.json(&["build", "show", b])["build"]["state"].as_u64().expect("state")
}

#[test]
fn file_target_copies_every_change_and_a_fresh_store_continues_from_it() {
    let here = Env::new().with_catalog();
    let remote = here.path("remote");
    let url = format!("file://{}", remote.display());
    let b = here.build("rhel-9.6-base-aws-commercial-sync-1");
    here.ok(&["--sync", &url, "state", "complete", &b, "0"]);
    let copy = remote.join("aws").join(&b).join("state.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&copy).expect("copy written"))
        .expect("the copy is the export document");
    assert_eq!(doc["current_state"], 5);

    // A fresh machine: empty store, same target.
    let there = Env::new();
    let out = there.ok(&["resume", &b, "--from", &url]);
    assert!(out.starts_with("5 kickstart"), "{out}");
    there.ok(&["--sync", &url, "state", "complete", &b, "5"]);
    assert_eq!(state_of(&there, &b), 10);

    // Back here the copy is newer than the local build: pushing does not overwrite it.
    let (code, out, _) = run(here.std_cmd(), &["--sync", &url, "sync", "push", &b]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("remote copy is newer"), "{out}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&copy).expect("copy")).expect("json");
    assert_eq!(doc["current_state"], 10, "the newer copy was kept");
    // Pulling brings the local store up to date, and the two agree.
    here.ok(&["--sync", &url, "sync", "pull", &b]);
    assert_eq!(state_of(&here, &b), 10);
    let (code, out, _) = run(here.std_cmd(), &["--sync", &url, "sync", "status"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn s3_copies_and_resume_from_a_fresh_store() {
    let endpoint = s3_endpoint();
    let bucket = "buildstate-cli-test";
    let created = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "content-type: text/plain"])
        .arg(format!("{endpoint}/{bucket}"))
        .output()
        .expect("curl");
    let status = String::from_utf8_lossy(&created.stdout).to_string();
    assert!(status == "200" || status == "409", "create the bucket: {status}");
    let url = format!("s3://{bucket}/run-{}", std::process::id());

    let here = Env::new().with_catalog();
    let b = here.build("rhel-9.6-base-aws-commercial-sync-2");
    let (code, _, err) =
        run(with_s3(here.std_cmd(), &endpoint), &["--sync", &url, "state", "complete", &b, "0"]);
    assert_eq!(code, 0, "{err}");
    let there = Env::new();
    let (code, out, err) = run(with_s3(there.std_cmd(), &endpoint), &["resume", &b, "--from", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("5 kickstart"), "{out}");
}

#[test]
fn an_unreachable_endpoint_neither_blocks_nor_loses_a_transition() {
    let endpoint = s3_endpoint();
    let bucket = "buildstate-cli-test";
    let _ = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-X", "PUT", "-H", "content-type: text/plain"])
        .arg(format!("{endpoint}/{bucket}"))
        .output();
    let url = format!("s3://{bucket}/down-{}", std::process::id());
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let down = format!("http://127.0.0.1:{closed}");

    let here = Env::new().with_catalog();
    let b = here.build("rhel-9.6-base-aws-commercial-sync-3");
    let started = Instant::now();
    let (code, _, err) = run(with_s3(here.std_cmd(), &down), &["--sync", &url, "state", "complete", &b, "0"]);
    assert_eq!(code, 0, "the transition is recorded whatever the copy does: {err}");
    assert!(started.elapsed() < Duration::from_secs(20), "bounded: {:?}", started.elapsed());
    assert!(err.contains("backlog"), "the user is told: {err}");
    assert_eq!(state_of(&here, &b), 5);

    // The endpoint is back: `sync push` sends the backlog, and a fresh store can resume.
    let (code, out, err) = run(with_s3(here.std_cmd(), &endpoint), &["--sync", &url, "sync", "push", &b]);
    assert_eq!(code, 0, "{out}{err}");
    let there = Env::new();
    let (code, out, err) = run(with_s3(there.std_cmd(), &endpoint), &["resume", &b, "--from", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("5 kickstart"), "{out}");
}
