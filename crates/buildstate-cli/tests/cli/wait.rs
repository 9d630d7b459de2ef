//! `buildstate wait`: a CI job gating on other builds' milestones — reached (0), never
//! (8: failed with nobody to retry it, needs a person, cancelled), timed out (124) —
//! and every mistake refused with its code before any waiting.

use std::time::{Duration, Instant};

use crate::common::Env;

/// A pipeline of two cells whose step at 10 sleeps a little, at 20 fails once
/// (transiently, retried after 1 s by the runner, which keeps the lease meanwhile).
const GATED: &str = r#"name: gated
matrix:
  platform: [aws-commercial]
  os: [rhel-9.6]
  image: [base, hana]
states:
  10:
    run: sleep 1
  20:
    run: |
      [ -e "twenty-$BUILDSTATE_IMAGE" ] && exit 0
      touch "twenty-$BUILDSTATE_IMAGE"; exit 75
    retry:
      max_attempts: 3
      backoff: {kind: fixed, delay: 1s}
      transient: {exit_codes: [75]}
"#;

#[test]
fn waiting_for_every_cell_of_a_pipeline_ends_when_the_last_one_is_past_the_milestone() {
    let env = Env::new().with_catalog().with_images(&["hana"]);
    let pipeline = env.write("gated.yml", GATED);
    let p = pipeline.to_str().expect("utf-8");
    // Started before any build exists: the file's matrix names the cells to wait for.
    let mut waiter = env.spawn(
        "waiter",
        &["wait", "--all", "--pipeline", p, "--until", "20", "--interval", "200ms", "--timeout", "120s"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, _, r) = env.run_pipeline(&pipeline, &["--jobs", "2"]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(waiter.wait(Duration::from_secs(60)), 0, "{}", waiter.output());
    let out = waiter.output();
    assert!(out.contains("aws-commercial/rhel-9.6/base has no build yet"), "{out}");
    assert!(out.contains("(aws-commercial/rhel-9.6/hana) reached"), "{out}");
    // The transient failure at 20 was waited through: the runner held the lease.
    assert!(!out.contains("will not reach"), "{out}");
}

#[test]
fn one_build_reached_delivered_timed_out_or_never() {
    let env = Env::new().with_catalog();
    let b = env.build("w-1");
    // Reached while waiting.
    let mut waiter =
        env.spawn("one", &["wait", &b, "--until", "5", "--interval", "100ms", "--timeout", "60s"]);
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["state", "start", &b, "0"]);
    env.ok(&["state", "complete", &b, "0"]);
    env.ok(&["state", "start", &b, "5"]);
    env.ok(&["state", "complete", &b, "5"]);
    assert_eq!(waiter.wait(Duration::from_secs(30)), 0, "{}", waiter.output());
    assert!(
        waiter.output().contains("build w-1 (aws-commercial/rhel-9.6/base) reached"),
        "{}",
        waiter.output()
    );

    // Already past: at once, with JSON if asked.
    let json = env.json(&["wait", &b, "--until", "0"]);
    assert_eq!(json[0]["reached"], true, "{json}");
    assert_eq!(json[0]["state"], 10, "{json}");

    // Not in time: 124, naming where the build is.
    let started = Instant::now();
    let r = env.run(&["wait", &b, "--until", "delivered", "--timeout", "1s", "--interval", "200ms"]);
    assert_eq!(r.code, 124, "{r:?}");
    assert!(r.stderr.contains("timed out after 1s waiting for delivery: build w-1"), "{r:?}");
    assert!(r.stderr.contains("is at 10, running"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // With --json, where each build is is printed on a timeout too (hostile review).
    let r =
        env.run(&["wait", &b, "--until", "delivered", "--timeout", "300ms", "--interval", "100ms", "--json"]);
    assert_eq!(r.code, 124, "{r:?}");
    let standings: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    assert_eq!(standings[0]["reached"], false, "{standings}");

    // Failed with no runner holding it: nobody will retry it, so 8 at once.
    env.ok(&["state", "start", &b, "10"]);
    env.ok(&["state", "fail", &b, "10", "--type", "test", "--error", "broke"]);
    let r = env.run(&["wait", &b, "--until", "90"]);
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains("failed at 10") && r.stderr.contains("no runner holds it"), "{r:?}");
    assert!(r.stderr.contains("it will not reach milestone 90"), "{r:?}");

    // Cancelled: 8 too.
    let c = env.build("w-2");
    env.ok(&["build", "cancel", &c, "--reason", "not needed"]);
    let r = env.run(&["wait", &c, "--until", "delivered"]);
    assert_eq!(r.code, 8, "{r:?}");
    assert!(r.stderr.contains("was cancelled at 0"), "{r:?}");
}

#[test]
fn mistakes_are_refused_before_any_waiting() {
    let env = Env::new().with_catalog();
    let gated = env.write("gated.yml", GATED);
    let gated = gated.to_str().expect("utf-8");
    let b = env.build("w-3");
    for (args, code, says) in [
        (vec!["wait", &b, "--until", "97"], 2, "milestone 97 is not in the catalog of build w-3"),
        (vec!["wait", &b, "--until", "ninety"], 2, "neither a milestone code nor `delivered`"),
        (vec!["wait", &b, "--until", "250"], 2, "250"),
        (vec!["wait", "--until", "90"], 2, "say which build to wait for"),
        (vec!["wait", "nosuch", "--until", "90"], 3, "nosuch"),
        (vec!["wait", "--all", "--until", "90"], 2, "--pipeline"),
        (vec!["wait", "--all", "--pipeline", "nosuch", "--until", "90"], 3, "no build of pipeline nosuch"),
        (vec!["wait", "--all", "--pipeline", "missing.yml", "--until", "90"], 2, "missing.yml"),
        (
            vec!["wait", "--all", "--pipeline", "p", "--only", "os=x", "--until", "90"],
            2,
            "--only needs the pipeline's file",
        ),
        (vec!["wait", &b, "--until", "90", "--interval", "1ms"], 2, "outside 100ms"),
        (vec!["wait", &b, "--all", "--pipeline", "p", "--until", "90"], 2, "cannot be used with"),
        // From a hostile review: known before any build of the file exists.
        (
            vec!["wait", "--all", "--pipeline", gated, "--until", "21"],
            2,
            "milestone 21 is not in pipeline gated's catalog",
        ),
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
}

/// Through `buildstate serve`, with only the server's URL and a token.
#[test]
fn through_a_server_a_delivered_build_is_reached() {
    let env = Env::served().with_catalog();
    let b = env.build("w-4");
    env.ok(&["state", "start", &b, "0"]);
    env.ok(&["state", "complete", &b, "0"]);
    let r = env.run(&["wait", &b, "--until", "0", "--timeout", "10s"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = env.run(&["wait", &b, "--until", "5", "--timeout", "500ms", "--interval", "100ms"]);
    assert_eq!(r.code, 124, "{r:?}");
}
