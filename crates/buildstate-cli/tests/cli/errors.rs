//! Issue item 6: every bad input gets a non-zero exit of its kind, one `error:` line,
//! and leaves the build byte-for-byte unchanged in what it exports.

use crate::common::Env;

fn at(env: &Env, number: &str, code: u8) -> String {
    let b = env.build(number);
    env.advance_to(&b, code);
    b
}

#[test]
fn code_outside_the_catalog_is_a_rejected_transition() {
    let env = Env::new().with_catalog();
    let b = at(&env, "c7-1", 5);
    for cmd in ["start", "complete", "fail"] {
        let err = env.fails_unchanged(&b, &["state", cmd, &b, "7"], 4);
        assert!(err.contains("state 7 is not in the catalog of build c7-1 (valid: 0, 5, 10,"), "{err}");
    }
    let err = env.fails_unchanged(&b, &["rewind", &b, "--to", "3", "--reason", "x"], 4);
    assert!(err.contains("not in the catalog"), "{err}");
}

#[test]
fn codes_that_are_not_state_codes_are_usage_errors() {
    let env = Env::new().with_catalog();
    let b = at(&env, "bad-1", 5);
    for (code, says) in
        [("250", "250 is out of range"), ("-5", "-5 is out of range"), ("abc", "`abc` is not a state code")]
    {
        for cmd in ["start", "complete", "fail"] {
            let err = env.fails_unchanged(&b, &["state", cmd, &b, code], 2);
            assert!(err.contains(says), "{cmd} {code}: {err}");
        }
        let err = env.fails_unchanged(&b, &["rewind", &b, "--to", code, "--reason", "x"], 2);
        assert!(err.contains(says), "rewind {code}: {err}");
        env.fails(&["build", "list", "--state", code], 2);
    }
}

#[test]
fn unknown_status_and_class_words() {
    let env = Env::new().with_catalog();
    let b = at(&env, "w-1", 5);
    let err = env.fails(&["build", "list", "--status", "bogus"], 2);
    assert!(err.contains("`bogus` is not a known build status (expected one of: pending, running"), "{err}");
    let err = env.fails_unchanged(&b, &["state", "fail", &b, "5", "--class", "sometimes"], 2);
    assert!(err.contains("`sometimes` is not a known failure class"), "{err}");
    let err = env.fails_unchanged(&b, &["state", "fail", &b, "5", "--type", "Not A Type"], 2);
    assert!(err.contains("is not a failure type"), "{err}");
    let err =
        env.fails_unchanged(&b, &["artifact", "add", &b, "--name", "x", "--kind", "blob", "--uri", "u"], 2);
    assert!(err.contains("is not a artifact kind") || err.contains("artifact kind"), "{err}");
}

#[test]
fn unknown_and_ambiguous_references() {
    let env = Env::new().with_catalog();
    let one = at(&env, "amb-1", 0);
    env.build("amb-2");
    let err = env.fails(&["build", "show", "nope"], 3);
    assert!(err.contains("no build matches `nope`"), "{err}");
    env.fails(&["state", "complete", "nope", "0"], 3);
    let err = env.fails_unchanged(&one, &["state", "complete", "amb", "0"], 2);
    assert!(err.contains("matches 2 builds"), "{err}");
    // A unique prefix of the number, and of the id, both work.
    assert_eq!(env.json(&["build", "show", "amb-1"])["build"]["number"], "amb-1");
    let id = env.json(&["build", "show", "amb-1"])["build"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(env.json(&["build", "show", &id[..18]])["build"]["number"], "amb-1");
}

#[test]
fn only_the_current_state_moves() {
    let env = Env::new().with_catalog();
    let b = at(&env, "cur-1", 10);
    let err = env.fails_unchanged(&b, &["state", "complete", &b, "15"], 4);
    assert!(err.contains("is at 10 (green-image), not 15"), "{err}");
    let err = env.fails_unchanged(&b, &["state", "complete", &b, "5"], 4);
    assert!(err.contains("rewind"), "backwards needs a rewind: {err}");
    env.fails_unchanged(&b, &["state", "start", &b, "0"], 4);
    let err = env.fails_unchanged(&b, &["rewind", &b, "--to", "20", "--reason", "x"], 4);
    assert!(err.contains("rewind only moves back"), "{err}");
    env.fails_unchanged(&b, &["rewind", &b, "--to", "5", "--reason", " "], 4);
    env.ok(&["state", "start", &b, "10"]);
    let err = env.fails_unchanged(&b, &["state", "start", &b, "10"], 4);
    assert!(err.contains("still running"), "{err}");
    env.ok(&["state", "fail", &b, "10", "--error", "x"]);
    let err = env.fails_unchanged(&b, &["state", "start", &b, "10"], 4);
    assert!(err.contains("buildstate retry cur-1"), "{err}");
}

#[test]
fn terminal_builds_take_nothing_but_rewind() {
    let env = Env::new().with_catalog();
    let delivered = at(&env, "done-1", 100);
    env.ok(&["state", "complete", &delivered, "100"]);
    let cancelled = at(&env, "gone-1", 15);
    env.ok(&["build", "cancel", &cancelled, "--reason", "obsolete"]);
    for (b, code) in [(&delivered, "100"), (&cancelled, "15")] {
        for args in [
            vec!["state", "start", b, code],
            vec!["state", "complete", b, code],
            vec!["state", "fail", b, code, "--error", "x"],
            vec!["retry", b, "--force"],
            vec!["build", "cancel", b, "--reason", "again"],
        ] {
            let err = env.fails_unchanged(b, &args, 4);
            assert!(err.contains("nothing but `buildstate rewind"), "{args:?}: {err}");
        }
    }
    let out = env.ok(&["rewind", &delivered, "--to", "95", "--reason", "re-seal"]);
    assert!(out.contains("95 (seal)"), "{out}");
    env.ok(&["rewind", &cancelled, "--to", "15", "--reason", "needed after all"]);
    assert_eq!(env.json(&["build", "show", &cancelled])["build"]["status"], "running");
}

#[test]
fn bad_failure_inputs_change_nothing() {
    let env = Env::new().with_catalog();
    let b = at(&env, "in-1", 5);
    let err = env.fails_unchanged(&b, &["state", "fail", &b, "5", "--details", "{not json"], 2);
    assert!(err.contains("details must be a JSON object"), "{err}");
    env.fails_unchanged(&b, &["state", "fail", &b, "5", "--details", "[1,2]"], 2);
    env.fails_unchanged(&b, &["state", "fail", &b, "5", "--max-attempts", "0"], 2);
    env.fails_unchanged(&b, &["state", "fail", &b, "5", "--error", "@/nonexistent/file"], 2);
    env.fails_unchanged_stdin(&b, &["state", "fail", &b, "5", "--error", "-", "--details", "-"], b"{}", 2);
    env.fails_unchanged(&b, &["meta", "set", &b, "bad key", "v"], 2);
    env.fails_unchanged(&b, &["meta", "set", &b, "k", &"v".repeat(5000)], 2);
    env.fails_unchanged(&b, &["retry", &b], 4);
    env.fails(&["state", "complete"], 2);
    env.fails(&["no-such-command"], 2);
}
