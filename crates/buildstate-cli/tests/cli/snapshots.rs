//! What users read, pinned: error texts, a table, a JSON answer, each with the exit code
//! it comes with. Builds get fixed numbers and volatile fields (ids, times) are replaced,
//! so the snapshots are stable.

use crate::common::Env;

/// The exit code, stdout and stderr, with the store's temporary path (named by "not
/// found" errors) as `[db]`.
fn outcome(env: &Env, args: &[&str]) -> String {
    env.run(args).transcript().replace(env.db.to_str().expect("utf-8 path"), "[db]")
}

#[test]
fn error_texts() {
    let env = Env::new().with_catalog();
    let b = env.build("snap-1");
    env.advance_to(&b, 10);
    insta::assert_snapshot!("code_not_in_catalog", outcome(&env, &["state", "complete", &b, "7"]));
    insta::assert_snapshot!("code_out_of_range", outcome(&env, &["state", "complete", &b, "250"]));
    insta::assert_snapshot!("negative_code", outcome(&env, &["state", "complete", &b, "-5"]));
    insta::assert_snapshot!("bogus_status", outcome(&env, &["build", "list", "--status", "bogus"]));
    insta::assert_snapshot!("unknown_ref", outcome(&env, &["history", "nope"]));
    insta::assert_snapshot!("backwards", outcome(&env, &["state", "complete", &b, "5"]));
    insta::assert_snapshot!(
        "bad_name",
        outcome(&env, &["platform", "add", "x'; DROP TABLE builds", "--provider", "aws"])
    );
    insta::assert_snapshot!("missing_argument", outcome(&env, &["state", "complete", &b]));
}

#[test]
fn catalog_table() {
    let env = Env::new();
    env.ok(&["init", "--sample"]);
    insta::assert_snapshot!("platform_list", outcome(&env, &["platform", "list"]));
}

#[test]
fn resume_json() {
    let env = Env::new().with_catalog();
    let b = env.build("snap-2");
    env.advance_to(&b, 25);
    env.ok(&["state", "fail", &b, "25", "--error", "selinux policy", "--type", "ansible"]);
    let r = env.run(&["resume", &b, "--json"]);
    let mut v: serde_json::Value = serde_json::from_str(&r.stdout).expect("resume --json");
    v["id"] = "[id]".into();
    // `exit_code` inside is what resume reports; `exit` is how the process ended.
    insta::assert_json_snapshot!(
        "resume_retry",
        serde_json::json!({"exit": r.code, "stdout": v, "stderr": r.stderr})
    );
}
