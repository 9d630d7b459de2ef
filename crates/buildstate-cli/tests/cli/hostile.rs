//! Hostile text: huge messages, quotes, SQL keywords, NUL bytes and control characters.
//!
//! Names (catalog names, build numbers, metadata keys) are identifiers: anything outside
//! their safe alphabet is refused (exit 2). Free text (error messages, reasons, notes,
//! metadata values) is data: stored verbatim, except control characters other than
//! newline and tab, which are stored as a visible `\u{..}` escape; error messages over
//! 64 KiB keep their head and tail around a marker.

use serde_json::Value;

use crate::common::Env;

fn exported(env: &Env, b: &str) -> Value {
    serde_json::from_str(&env.export(b)).expect("export is JSON")
}

#[test]
fn a_one_mebibyte_error_message_from_stdin_is_bounded_keeping_head_and_tail() {
    let env = Env::new().with_catalog();
    let b = env.build("big-1");
    let mut msg = String::from("HEAD-OF-OUTPUT\n");
    while msg.len() < 1024 * 1024 {
        msg.push_str("ansible: TASK [install agent] still failing, retrying after a pause...\n");
    }
    msg.push_str("fatal: TAIL-OF-OUTPUT the real error is here");
    env.cmd().args(["state", "fail", &b, "0", "--error", "-"]).write_stdin(msg.clone()).assert().success();
    let doc = exported(&env, &b);
    let stored = doc["errors"][0]["message"].as_str().expect("message");
    assert!(stored.len() <= 64 * 1024, "stored {} bytes", stored.len());
    assert!(stored.starts_with("HEAD-OF-OUTPUT\n"), "head kept");
    assert!(stored.ends_with("fatal: TAIL-OF-OUTPUT the real error is here"), "tail kept");
    assert!(stored.contains("bytes cut by buildstate"), "marker says what was cut");
    // The history event carries the same bounded text.
    let failed = doc["history"].as_array().expect("history").iter().find(|e| e["kind"] == "failed").cloned();
    assert_eq!(failed.as_ref().and_then(|e| e["message"].as_str()), Some(stored));
}

#[test]
fn the_error_message_can_come_from_a_file() {
    let env = Env::new().with_catalog();
    let b = env.build("file-1");
    let path = env.path("err.txt");
    std::fs::write(&path, "from a file\n").expect("write");
    let arg = format!("@{}", path.display());
    env.ok(&["state", "fail", &b, "0", "--error", &arg]);
    assert_eq!(exported(&env, &b)["errors"][0]["message"], "from a file\n");
}

#[test]
fn quotes_sql_nul_and_control_characters_in_messages_are_stored_escaped() {
    let env = Env::new().with_catalog();
    let b = env.build("msg-1");
    let raw = "it's \"quoted\"; DROP TABLE builds; -- \0nul \x1b[31mred\x07 bell\n\tnext line";
    env.cmd()
        .args(["state", "fail", &b, "0", "--error", "-", "--component", "it's; DELETE FROM x"])
        .write_stdin(raw)
        .assert()
        .success();
    let doc = exported(&env, &b);
    assert_eq!(
        doc["errors"][0]["message"],
        "it's \"quoted\"; DROP TABLE builds; -- \\u{0}nul \\u{1b}[31mred\\u{7} bell\n\tnext line"
    );
    assert_eq!(doc["errors"][0]["component"], "it's; DELETE FROM x");
    // Reasons from argv: quotes and SQL stored verbatim; control characters escaped.
    env.ok(&["retry", &b, "--reason", "Robert'); DROP TABLE builds;--\x1b"]);
    let doc = exported(&env, &b);
    let retried =
        doc["history"].as_array().expect("history").iter().find(|e| e["kind"] == "retried").cloned();
    assert_eq!(
        retried.as_ref().and_then(|e| e["message"].as_str()),
        Some("Robert'); DROP TABLE builds;--\\u{1b}")
    );
    // Metadata values follow the same policy; the store still works afterwards.
    env.ok(&["meta", "set", &b, "note", "x'; SELECT * FROM builds; --\x07"]);
    assert_eq!(env.ok(&["meta", "get", &b, "note"]), "x'; SELECT * FROM builds; --\\u{7}\n");
    assert_eq!(env.json(&["build", "list"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn quotes_sql_and_control_characters_in_names_are_usage_errors() {
    let env = Env::new().with_catalog();
    let b = env.build("name-1");
    let hostile =
        ["a'b", "x\"y", "base; DROP TABLE builds", "'; --", "a\x1bb", "line\nbreak", "tab\there", "UPPER"];
    for name in hostile {
        let before = env.export(&b);
        env.fails(&["platform", "add", name, "--provider", "aws"], 2);
        env.fails(&["os", "add", name, "--family", "rhel", "--major", "9"], 2);
        env.fails(&["image-type", "add", name], 2);
        env.fails(&["build", "create", "--platform", name, "--os", "rhel-9.6", "--image", "base"], 2);
        env.fails(
            &[
                "build",
                "create",
                "--platform",
                "aws-commercial",
                "--os",
                "rhel-9.6",
                "--image",
                "base",
                "--number",
                name,
            ],
            2,
        );
        if name != "UPPER" {
            // Metadata keys allow upper case (`AMI_ID`); everything else here is refused.
            env.fails(&["meta", "set", &b, name, "v"], 2);
        }
        assert_eq!(before, env.export(&b));
    }
    // Display names are one-line labels: control characters are refused too.
    env.fails(&["image-type", "add", "ok-name", "--display-name", "two\nlines"], 2);
    // Nothing was added by any of it.
    assert_eq!(env.json(&["platform", "list"]).as_array().map(Vec::len), Some(1));
    assert_eq!(env.json(&["image-type", "list"]).as_array().map(Vec::len), Some(1));
    // The error line never echoes raw control characters.
    let err = env.fails(&["platform", "add", "a\x1b[2Jb", "--provider", "aws"], 2);
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn nul_bytes_in_names_arrive_only_through_documents_and_are_refused() {
    // The OS cannot pass NUL in an argument, so the way in is an import document.
    let env = Env::new().with_catalog();
    let b = env.build("nul-1");
    let doc = env.export(&b).replace("\"platform\": \"aws-commercial\"", "\"platform\": \"aws\\u0000x\"");
    assert!(doc.contains("aws\\u0000x"));
    let other = Env::new();
    other.ok(&["init"]);
    let r = other.run_stdin(&["import", "-"], doc);
    let err = crate::common::expect_error(&r, 7, "import with NUL");
    assert!(err.contains("is not a valid name"), "{err}");
    assert_eq!(other.json(&["build", "list"]).as_array().map(Vec::len), Some(0));
}
