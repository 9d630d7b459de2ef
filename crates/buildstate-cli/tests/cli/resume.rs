//! `resume`: what to run next, as text, JSON and exit code.

use crate::common::Env;

fn resume(env: &Env, b: &str) -> (i32, serde_json::Value, String) {
    let r = env.run(&["resume", b, "--json"]);
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("resume --json: {e}: {r:?}"));
    let text = env.run(&["resume", b]);
    assert_eq!(text.code, r.code, "text and JSON agree on the exit code");
    (r.code, v, text.stdout)
}

#[test]
fn run_state_n_with_the_reason() {
    let env = Env::new().with_catalog();
    let b = env.build("r-1");
    let (code, v, text) = resume(&env, &b);
    assert_eq!((code, v["state"].as_u64(), v["reason"].as_str()), (0, Some(0), Some("next")));
    assert!(text.starts_with("0 initial\n"), "{text}");

    env.advance_to(&b, 45);
    let (code, v, text) = resume(&env, &b);
    assert_eq!((code, v["state"].as_u64(), v["state_name"].as_str()), (0, Some(45), Some("storage")));
    assert!(text.starts_with("45 storage\n") && text.contains("after 40 (network)"), "{text}");

    env.ok(&["state", "start", &b, "45"]);
    let (code, v, text) = resume(&env, &b);
    assert_eq!((code, v["reason"].as_str(), v["attempts"].as_u64()), (0, Some("attempt-open"), Some(1)));
    assert!(text.contains("already open"), "{text}");

    env.ok(&["state", "fail", &b, "45", "--error", "disk full"]);
    let (code, v, text) = resume(&env, &b);
    assert_eq!((code, v["reason"].as_str(), v["run"].as_bool()), (0, Some("retry"), Some(true)));
    assert!(text.contains("buildstate retry r-1") && text.contains("disk full"), "{text}");
}

#[test]
fn needs_intervention_is_eleven() {
    let env = Env::new().with_catalog();
    let b = env.build("r-2");
    env.ok(&["state", "fail", &b, "0", "--class", "persistent", "--error", "bad kickstart"]);
    let (code, v, text) = resume(&env, &b);
    assert_eq!(
        (code, v["reason"].as_str(), v["exit_code"].as_u64()),
        (11, Some("needs-intervention"), Some(11))
    );
    assert!(text.contains("persistent") && text.contains("--force"), "{text}");
    env.ok(&["retry", &b, "--force", "--reason", "kickstart fixed"]);
    assert_eq!(resume(&env, &b).0, 0);

    // Retries used up: three transient failures at 10 (max 3 by default).
    let c = env.build("r-3");
    env.advance_to(&c, 10);
    for i in 0..3 {
        if i > 0 {
            env.ok(&["retry", &c]);
        }
        env.ok(&["state", "fail", &c, "10", "--error", "flaky"]);
    }
    let (code, _, text) = resume(&env, &c);
    assert_eq!(code, 11);
    assert!(text.contains("retries are used up"), "{text}");
}

#[test]
fn delivered_is_ten_and_cancelled_is_twelve() {
    let env = Env::new().with_catalog();
    let b = env.build("r-4");
    env.advance_to(&b, 100);
    env.ok(&["state", "complete", &b, "100"]);
    let (code, v, text) = resume(&env, &b);
    assert_eq!((code, v["reason"].as_str(), v["run"].as_bool()), (10, Some("delivered"), Some(false)));
    assert!(text.contains("nothing to do"), "{text}");

    let c = env.build("r-5");
    env.advance_to(&c, 20);
    env.ok(&["build", "cancel", &c, "--reason", "obsolete"]);
    let (code, v, text) = resume(&env, &c);
    assert_eq!((code, v["reason"].as_str()), (12, Some("cancelled")));
    assert!(text.contains("buildstate rewind r-5 --to 20"), "{text}");
}
