//! `buildstate run` with real step processes: resuming after a failure at any milestone,
//! two runners on one pipeline, retry counts and backoff, and steps that call
//! buildstate themselves under their runner's lease.

use std::time::Duration;

use serde_json::Value;

use crate::common::{
    Env, Mark, assert_each_completed_once, attempts, default_codes, step_pipeline, summary_builds, timestamp,
};

/// One build per milestone of the default catalog (image `at-C` fails at C): the first
/// run stops each at its C; once the cause is gone, the second run resumes each at its
/// C and delivers it, without running anything below C again.
#[test]
fn a_failure_at_any_milestone_resumes_at_that_milestone() {
    let images: Vec<String> = default_codes().map(|c| format!("at-{c}")).collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    let env = Env::new().with_catalog().with_images(&images);
    let pipeline = env.pipeline("resume", &step_pipeline("resume", &images, &[]));
    for c in default_codes() {
        env.write(&format!("fail-at-{c}-{c}"), "");
    }

    let (code, first, r) = env.run_pipeline(&pipeline, &["--jobs", "2"]);
    assert_eq!(code, 8, "no build is delivered: {r:?}");
    let builds = summary_builds(&first);
    assert_eq!(builds.len(), 21, "{first}");
    for ((b, row), c) in builds.iter().zip(default_codes()) {
        assert_eq!(row["image_type"], format!("at-{c}"), "matrix order: {row}");
        assert_eq!(
            (row["state"].as_u64(), row["status"].as_str(), row["needs_intervention"].as_bool()),
            (Some(u64::from(c)), Some("failed"), Some(true)),
            "a persistent failure stops {b} at {c}: {row}"
        );
        let mut expected = Vec::new();
        for s in default_codes().filter(|s| *s < c) {
            expected.extend([Mark::start(b, s, 1), Mark::done(b, s, 1)]);
        }
        expected.push(Mark::start(b, c, 1));
        assert_eq!(env.marks_of(b), expected, "side effects of {b} after the first run");
    }

    for c in default_codes() {
        std::fs::remove_file(env.path(&format!("fail-at-{c}-{c}"))).expect("remove a marker");
    }
    let (code, second, r) = env.run_pipeline(&pipeline, &["--jobs", "2"]);
    assert_eq!(code, 0, "every build is delivered: {r:?}");
    let again = summary_builds(&second);
    assert_eq!(
        again.iter().map(|(b, _)| b).collect::<Vec<_>>(),
        builds.iter().map(|(b, _)| b).collect::<Vec<_>>(),
        "re-running the pipeline resumes the same builds"
    );
    for ((b, row), c) in again.iter().zip(default_codes()) {
        assert_eq!(
            (row["state"].as_u64(), row["status"].as_str(), row["resumed_at"].as_u64()),
            (Some(100), Some("completed"), Some(u64::from(c))),
            "{b}: {row}"
        );
        // Below C: once, in the first run. C: failed once, then completed once by the
        // retry. Above C: once each, in order, all after C's success.
        let mut expected = Vec::new();
        for s in default_codes() {
            if s == c {
                expected.extend([Mark::start(b, c, 1), Mark::start(b, c, 2), Mark::done(b, c, 2)]);
            } else {
                expected.extend([Mark::start(b, s, 1), Mark::done(b, s, 1)]);
            }
        }
        assert_eq!(env.marks_of(b), expected, "side effects of {b} (failure injected at {c})");

        let history = env.history(b);
        let tried = attempts(&history);
        assert_eq!(tried.len(), 22, "{b}: 21 milestones and one failed attempt: {tried:#?}");
        assert_each_completed_once(&history, b);
        let failures = env.failures(b);
        assert_eq!(failures.len(), 1, "{b}: {failures:#?}");
        let f = &failures[0];
        assert_eq!(
            (f["state"].as_u64(), f["attempt"].as_u64(), f["exit_code"].as_i64(), f["class"].as_str()),
            (Some(u64::from(c)), Some(1), Some(2), Some("persistent")),
            "{b}: {f}"
        );
    }
}

/// Two runners started at once on one pipeline share its builds through leases: the
/// attempt records of each build never overlap in time, and each milestone is
/// completed once.
#[test]
fn two_runners_never_run_one_build_at_overlapping_times() {
    two_runners_never_run_one_build_at_overlapping_times_in(Env::new());
}

/// The same through `buildstate serve`, the CLI given only its URL and a token.
#[test]
fn two_runners_never_run_one_build_at_overlapping_times_through_the_server() {
    two_runners_never_run_one_build_at_overlapping_times_in(Env::served());
}

fn two_runners_never_run_one_build_at_overlapping_times_in(env: Env) {
    let images = ["a", "b", "c", "d"];
    let env = env.with_catalog().with_images(&images);
    let pipeline = env.pipeline("race", &step_pipeline("race", &images, &[("STEP_SLEEP", "0.03")]));

    let mut runners = [
        env.spawn_run("runner-1", &pipeline, &["--jobs", "2"]),
        env.spawn_run("runner-2", &pipeline, &["--jobs", "2"]),
    ];
    for runner in &mut runners {
        let code = runner.wait(Duration::from_secs(120));
        assert!(code == 0 || code == 8, "exit 0, or 8 for builds leased by the other: {}", runner.output());
        for (b, row) in summary_builds(&runner.json()) {
            let note = row["note"].as_str().unwrap_or("");
            assert!(
                row["delivered"] == true || note.contains("lease") || note.contains("is running it"),
                "{}: {b} stopped short for another reason than the other runner's lease: {row}",
                runner.label
            );
        }
    }
    let (code, last, r) = env.run_pipeline(&pipeline, &["--jobs", "2"]);
    assert_eq!(code, 0, "what was left is delivered: {r:?}");
    let builds = summary_builds(&last);
    assert_eq!(builds.len(), images.len(), "both runners converged on one build per cell: {last}");

    for (b, _) in &builds {
        let history = env.history(b);
        assert_each_completed_once(&history, b);
        let mut tried = attempts(&history);
        tried.sort_by_key(|a| a.started);
        for pair in tried.windows(2) {
            assert!(
                pair[0].closed <= pair[1].started,
                "{b}: attempt {} at {} ({} → {}) overlaps attempt {} at {} starting {}",
                pair[0].attempt,
                pair[0].state,
                pair[0].started,
                pair[0].closed,
                pair[1].attempt,
                pair[1].state,
                pair[1].started
            );
        }
    }
}

/// The events of `history` at `state` that open or close attempts: (kind, event).
fn attempt_events(history: &[Value], state: u64) -> Vec<(String, Value)> {
    history
        .iter()
        .filter(|e| e["state"].as_u64() == Some(state))
        .filter_map(|e| {
            let kind = e["kind"].as_str()?;
            matches!(kind, "started" | "failed" | "completed").then(|| (kind.to_owned(), e.clone()))
        })
        .collect()
}

/// Only transient failures (an exit code listed in `transient.exit_codes`) are retried,
/// at most `max_attempts` times in all, each after the fixed backoff.
#[test]
fn retries_follow_the_policy_count_and_backoff() {
    let env = Env::new().with_catalog().with_images(&["flaky", "twice", "broken"]);
    let yaml = r#"name: retry
matrix:
  platform: [aws-commercial]
  os: [rhel-9.6]
  image: [flaky, twice, broken]
states:
  10:
    run: |
      echo "$BUILDSTATE_IMAGE $BUILDSTATE_ATTEMPT" >> tries.log
      case "$BUILDSTATE_IMAGE" in
        flaky) exit 75 ;;
        twice) [ "$BUILDSTATE_ATTEMPT" -gt 2 ] || exit 75 ;;
        broken) exit 3 ;;
      esac
    retry:
      max_attempts: 3
      backoff: {kind: fixed, delay: 400ms}
      transient: {exit_codes: [75]}
"#;
    let pipeline = env.write("retry.yml", yaml);
    let (code, summary, r) = env.run_pipeline(&pipeline, &["--jobs", "3"]);
    assert_eq!(code, 8, "two builds stop at 10: {r:?}");
    let builds = summary_builds(&summary);
    let tries = std::fs::read_to_string(env.path("tries.log")).expect("tries.log");
    let delay = jiff::SignedDuration::from_millis(400);

    // (image, attempts, delivered, class of the failures)
    let cases: [(&str, u32, bool, &str); 3] = [
        ("flaky", 3, false, "transient"),
        ("twice", 3, true, "transient"),
        ("broken", 1, false, "persistent"),
    ];
    for ((b, row), (image, n, delivered, class)) in builds.iter().zip(cases) {
        assert_eq!(row["image_type"], image, "{row}");
        let ran: Vec<&str> = tries.lines().filter(|l| l.split(' ').next() == Some(image)).collect();
        let expected: Vec<String> = (1..=n).map(|a| format!("{image} {a}")).collect();
        assert_eq!(ran, expected, "{image}: the step ran once per attempt");
        assert_eq!(row["attempts"].as_u64(), Some(u64::from(n)), "{image}: {row}");

        let events = attempt_events(&env.history(b), 10);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        let mut expected = Vec::new();
        for a in 1..=n {
            expected.push("started");
            expected.push(if delivered && a == n { "completed" } else { "failed" });
        }
        assert_eq!(kinds, expected, "{image}: attempts at 10");
        for (i, pair) in events.windows(2).enumerate() {
            if let [(ended, failed), (started, next)] = pair
                && ended == "failed"
                && started == "started"
            {
                let waited = timestamp(next).duration_since(timestamp(failed));
                assert!(
                    waited >= delay && waited < jiff::SignedDuration::from_secs(30),
                    "{image}: retry after event {i} waited {waited:?}, expected the 400ms backoff"
                );
            }
        }

        let build = env.show(b);
        let failures = env.failures(b);
        let failed = if delivered { n - 1 } else { n };
        assert_eq!(failures.len(), failed as usize, "{image}: {failures:#?}");
        for (f, a) in failures.iter().zip(1..) {
            assert_eq!((f["attempt"].as_u64(), f["class"].as_str()), (Some(a), Some(class)), "{image}: {f}");
        }
        if delivered {
            assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(100), Some("completed")));
        } else {
            assert_eq!(
                (build["state"].as_u64(), build["status"].as_str(), build["needs_intervention"].as_bool()),
                (Some(10), Some("failed"), Some(true)),
                "{image}: stopped for a person: {build}"
            );
        }
    }
}

/// A step may call buildstate on its own build: the runner hands it its lease token,
/// without which the write is refused while the lease is held.
#[test]
fn steps_write_to_their_build_under_the_runners_lease() {
    steps_write_to_their_build_under_the_runners_lease_in(Env::new());
}

/// The same through `buildstate serve`, the CLI given only its URL and a token.
#[test]
fn steps_write_to_their_build_under_the_runners_lease_through_the_server() {
    steps_write_to_their_build_under_the_runners_lease_in(Env::served());
}

fn steps_write_to_their_build_under_the_runners_lease_in(env: Env) {
    let env = env.with_catalog();
    let yaml = r#"name: selfcall
matrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}
states:
  0: {run: '"$BUILDSTATE_BIN" meta set "$BUILDSTATE_BUILD" touched yes'}
  5:
    run: |
      env -u BUILDSTATE_LEASE_TOKEN "$BUILDSTATE_BIN" meta set "$BUILDSTATE_BUILD" sneaky yes 2> unleased.err
      echo $? > unleased.rc
"#;
    let pipeline = env.write("selfcall.yml", yaml);
    // A lease that cannot expire during the run, even on a starved machine: the write
    // without the token must meet a live lease.
    let (code, summary, r) = env.run_pipeline(&pipeline, &["--lease-ttl", "10m"]);
    assert_eq!(code, 0, "{r:?}");
    let (b, _) = summary_builds(&summary).remove(0);
    assert_eq!(env.ok(&["meta", "get", &b, "touched"]).trim(), "yes");
    assert_eq!(env.show(&b)["metadata"]["touched"], "yes");

    let rc = std::fs::read_to_string(env.path("unleased.rc")).expect("unleased.rc");
    let err = std::fs::read_to_string(env.path("unleased.err")).expect("unleased.err");
    assert_eq!(rc.trim(), "5", "without the token a step's write is refused (conflict): {err}");
    assert!(err.contains("is being run by"), "{err}");
    env.fails(&["meta", "get", &b, "sneaky"], 3);
}

/// `run --through CODE`: each build stops once past CODE (exit 0), and the next run goes
/// on from there: one CI job per milestone.
#[test]
fn through_stops_past_the_milestone_and_the_next_run_goes_on() {
    let env = Env::new().with_catalog();
    let yaml = "name: thru\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6]\n  image: [base]\nstates:\n  \
                10:\n    run: echo ten >> ran.log\n  20:\n    run: echo twenty >> ran.log\n";
    let pipeline = env.write("thru.yml", yaml);
    let (code, summary, r) = env.run_pipeline(&pipeline, &["--through", "10"]);
    assert_eq!(code, 0, "past 10 is as far as it was to go: {r:?}");
    let builds = summary_builds(&summary);
    assert_eq!(builds[0].1["state"], 15, "{summary}");
    assert!(builds[0].1["note"].as_str().is_some_and(|n| n.contains("--through")), "{summary}");
    assert_eq!(std::fs::read_to_string(env.path("ran.log")).expect("ran.log"), "ten\n");
    let (code, _, r) = env.run_pipeline(&pipeline, &["--through", "20"]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(env.path("ran.log")).expect("ran.log"),
        "ten\ntwenty\n",
        "10 not run again"
    );
    let (code, summary, r) = env.run_pipeline(&pipeline, &[]);
    assert_eq!(code, 0, "{r:?}");
    assert_eq!(summary_builds(&summary)[0].1["delivered"], true);
    let r = env.run(&["run", pipeline.to_str().expect("utf-8"), "--through", "12"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--through 12: milestone 12 is not in pipeline thru's catalog"), "{r:?}");
    // --build and --only both choose what runs: refused, not one of them ignored.
    let r = env.run(&["run", pipeline.to_str().expect("utf-8"), "--build", "x", "--only", "os=rhel-9.6"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("give one"), "{r:?}");
}

/// From a hostile review: the job of an earlier milestone run again (`--through 10`)
/// re-opened a build that had failed later and needed a person; it leaves it as it is.
#[test]
fn through_leaves_a_build_that_failed_later_as_it_is() {
    let env = Env::new().with_catalog();
    let yaml = "name: thru2\nmatrix:\n  platform: [aws-commercial]\n  os: [rhel-9.6]\n  image: [base]\nstates:\n  \
                10:\n    run: echo ten >> ran.log\n  20:\n    run: exit 3\n";
    let pipeline = env.write("thru2.yml", yaml);
    let (code, _, r) = env.run_pipeline(&pipeline, &[]);
    assert_eq!(code, 8, "{r:?}");
    let (code, summary, r) = env.run_pipeline(&pipeline, &["--through", "10"]);
    assert_eq!(code, 0, "milestone 10 is done: this job's part is: {r:?}");
    let row = &summary_builds(&summary)[0].1;
    assert_eq!((row["state"].as_u64(), row["status"].as_str()), (Some(20), Some("failed")), "{summary}");
    assert_eq!(row["needs_intervention"], true, "still needs a person: {summary}");
    assert_eq!(std::fs::read_to_string(env.path("ran.log")).expect("ran.log"), "ten\n");
}
