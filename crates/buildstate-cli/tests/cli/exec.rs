//! Track-only mode (`exec REF CODE -- CMD…`) and `logs`: the wrapped command's output
//! and exit code pass through unchanged, and the attempt is recorded.

use crate::common::{Env, Run, expect_error};

/// `buildstate ARGS…` run in the fixture's directory.
fn exec(env: &Env, args: &[&str]) -> Run {
    env.cmd().current_dir(env.dir.path()).args(args).output().expect("run buildstate").into()
}

#[test]
fn exec_passes_output_and_exit_code_through_and_records_the_attempt() {
    exec_passes_output_and_exit_code_through_and_records_the_attempt_in(Env::new());
}

/// The same through `buildstate serve`, the CLI given only its URL and a token.
#[test]
fn exec_passes_output_and_exit_code_through_and_records_the_attempt_through_the_server() {
    exec_passes_output_and_exit_code_through_and_records_the_attempt_in(Env::served());
}

fn exec_passes_output_and_exit_code_through_and_records_the_attempt_in(env: Env) {
    let env = env.with_catalog();
    let b = env.build("exec-1");

    let r = exec(&env, &["exec", &b, "0", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(r.code, 3, "the command's exit code: {r:?}");
    assert_eq!(r.stdout, "out\n", "the command's stdout and nothing else: {r:?}");
    assert!(r.stderr.contains("err"), "{r:?}");
    let build = env.show(&b);
    assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(0), Some("failed")), "{build}");
    let failures = env.failures(&b);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(
        (failures[0]["state"].as_u64(), failures[0]["attempt"].as_u64(), failures[0]["exit_code"].as_i64()),
        (Some(0), Some(1), Some(3)),
        "{}",
        failures[0]
    );

    // The CI step runs again and succeeds: the failed milestone is re-opened and completed.
    let r = exec(&env, &["exec", &b, "0", "--", "true"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{r:?}");
    let build = env.show(&b);
    assert_eq!(build["state"].as_u64(), Some(5), "{build}");
    let closed: Vec<(String, u64)> = env
        .history(&b)
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("failed" | "completed")))
        .map(|e| (e["kind"].as_str().unwrap_or("").to_owned(), e["attempt"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(closed, [("failed".to_owned(), 1), ("completed".to_owned(), 2)]);

    // Not the current milestone: refused before anything runs.
    let marker = env.path("ran");
    let touch = format!("touch {}", marker.display());
    for code in ["10", "0"] {
        let before = env.export(&b);
        let r = exec(&env, &["exec", &b, code, "--", "sh", "-c", &touch]);
        let err = expect_error(&r, 4, &format!("exec at {code}"));
        assert!(err.contains("exec-1"), "{err}");
        assert!(!marker.exists(), "exec at {code} ran the command although the build is at 5");
        assert_eq!(env.export(&b), before, "exec at {code} changed the build");
    }

    let log = env.ok(&["logs", &b, "--state", "0", "--attempt", "1"]);
    assert!(log.contains("out") && log.contains("err"), "the log holds both streams: {log:?}");
    assert_eq!(env.ok(&["logs", &b, "--state", "0", "--attempt", "2"]), "", "`true` printed nothing");
    let err = env.fails(&["logs", &b, "--state", "0", "--attempt", "3"], 3);
    assert!(err.contains("no recorded log for attempt 3 at state 0"), "{err}");
}

#[test]
fn logs_of_a_build_without_recorded_logs_is_not_found() {
    let env = Env::new().with_catalog();
    let b = env.build("logs-1");
    let err = env.fails(&["logs", &b], 3);
    assert!(err.contains("build logs-1 has no recorded log"), "{err}");
    // Milestones recorded by hand have no log either.
    env.ok(&["state", "complete", &b, "0"]);
    env.fails(&["logs", &b, "--state", "0"], 3);
    env.fails(&["logs", "no-such-build"], 3);
}
