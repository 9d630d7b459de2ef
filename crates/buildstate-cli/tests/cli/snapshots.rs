//! What users read, pinned: error texts, a table, a JSON answer. Builds get fixed
//! numbers and volatile fields (ids, times) are replaced, so the snapshots are stable.

use crate::common::Env;

/// Stderr, with the store's temporary path (named by "not found" errors) as `[db]`.
fn stderr(env: &Env, args: &[&str]) -> String {
    env.run(args).stderr.replace(env.db.to_str().expect("utf-8 path"), "[db]")
}

#[test]
fn error_texts() {
    let env = Env::new().with_catalog();
    let b = env.build("snap-1");
    env.advance_to(&b, 10);
    insta::assert_snapshot!("code_not_in_catalog", stderr(&env, &["state", "complete", &b, "7"]));
    insta::assert_snapshot!("code_out_of_range", stderr(&env, &["state", "complete", &b, "250"]));
    insta::assert_snapshot!("negative_code", stderr(&env, &["state", "complete", &b, "-5"]));
    insta::assert_snapshot!("bogus_status", stderr(&env, &["build", "list", "--status", "bogus"]));
    insta::assert_snapshot!("unknown_ref", stderr(&env, &["history", "nope"]));
    insta::assert_snapshot!("backwards", stderr(&env, &["state", "complete", &b, "5"]));
    insta::assert_snapshot!(
        "bad_name",
        stderr(&env, &["platform", "add", "x'; DROP TABLE builds", "--provider", "aws"])
    );
    insta::assert_snapshot!("missing_argument", stderr(&env, &["state", "complete", &b]));
}

#[test]
fn catalog_table() {
    let env = Env::new();
    env.ok(&["init", "--sample"]);
    insta::assert_snapshot!("platform_list", env.ok(&["platform", "list"]));
}

#[test]
fn resume_json() {
    let env = Env::new().with_catalog();
    let b = env.build("snap-2");
    env.advance_to(&b, 25);
    env.ok(&["state", "fail", &b, "25", "--error", "selinux policy", "--type", "ansible"]);
    let mut v = env.json(&["resume", &b]);
    v["id"] = "[id]".into();
    insta::assert_json_snapshot!("resume_retry", v);
}
