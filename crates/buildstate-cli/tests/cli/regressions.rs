//! Regression tests for the data loss and security defects hostile testing found
//! (issue 7, item 3), each against the real binary.

use crate::common::{Env, read};

/// 3.1: coloured tool output under 4 KiB grew past the limit when escaped, was stored,
/// and then no read of the store worked again.
#[test]
fn coloured_metadata_is_refused_or_readable_never_poison() {
    let env = Env::new().with_catalog();
    let b = env.build("colour-1");
    let coloured = "\x1b[31mFAILED\x1b[0m ".repeat(200);
    assert!(coloured.len() < 4096, "under the limit as typed");
    let err = env.fails_unchanged(&b, &["meta", "set", &b, "tool_output", &coloured], 2);
    assert!(err.contains("escaped"), "the message says why it is too long: {err}");
    // What fits once escaped is stored and every read still works.
    env.ok(&["meta", "set", &b, "tool_output", &"\x1b[1mok ".repeat(100)]);
    env.ok(&["build", "list"]);
    env.ok(&["build", "show", &b]);
    let doc = env.export(&b);
    std::fs::write(env.path("doc.json"), &doc).expect("write");
    env.ok(&["import", env.path("doc.json").to_str().expect("utf-8"), "--replace"]);
    assert_eq!(env.export(&b), doc, "it round-trips");
}

/// 3.3: a milestone name from an imported document became part of a log path.
#[test]
fn imported_milestone_names_cannot_escape_the_logs_directory() {
    let env = Env::new().with_catalog();
    let b = env.build("names-1");
    let mut doc: serde_json::Value = serde_json::from_str(&env.export(&b)).expect("json");
    doc["build_id"] = serde_json::json!("0190a0a0-0000-7000-8000-000000000001");
    doc["build_number"] = serde_json::json!("names-2");
    let token = format!("bs1:{}:0:{}", doc["build_id"].as_str().expect("id"), doc["version"]);
    doc["resume_token"] = serde_json::json!(token);
    doc["catalog"][1]["name"] = serde_json::json!("x/../../../tmp/OUT");
    let file = env.path("evil.json");
    std::fs::write(&file, doc.to_string()).expect("write");
    let before = env.ok(&["build", "list", "--json"]);
    let err = env.fails(&["import", file.to_str().expect("utf-8")], 7);
    assert!(err.contains("x/../../../tmp/OUT") || err.contains("not valid"), "{err}");
    assert_eq!(env.ok(&["build", "list", "--json"]), before, "nothing was imported");
}

/// Item 4: after a rewind, the new attempt's output goes to a file of its own instead of
/// being appended to the old attempt's log.
#[test]
fn every_attempt_has_its_own_log_also_after_a_rewind() {
    let env = Env::new().with_catalog();
    let b = env.build("logs-1");
    env.ok(&["exec", &b, "0", "--", "sh", "-c", "echo first-run"]);
    env.ok(&["rewind", &b, "--to", "0", "--reason", "redo"]);
    env.ok(&["exec", &b, "0", "--", "sh", "-c", "echo second-run"]);
    let history = env.json(&["history", &b]);
    let logs: Vec<String> = history
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "started")
        .filter_map(|e| e["log"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(logs.len(), 2, "two attempts: {logs:?}");
    assert_ne!(logs[0], logs[1], "one log per attempt");
    assert_eq!(read(std::path::Path::new(&logs[0])).trim(), "first-run");
    assert_eq!(read(std::path::Path::new(&logs[1])).trim(), "second-run");
}

/// 3.6: `import /dev/zero` grew until the OOM killer ended it; `run` read without a
/// bound too. Non-regular files and oversized files are refused with exit 2, at once.
#[test]
fn unbounded_and_special_files_are_refused_before_reading() {
    let env = Env::new().with_catalog();
    let started = std::time::Instant::now();
    for special in ["/dev/zero", "/dev/null", "/tmp"] {
        let err = env.fails(&["import", special], 2);
        assert!(err.contains("not a regular file"), "import {special}: {err}");
        let err = env.fails(&["run", special], 2);
        assert!(err.contains("not a regular file"), "run {special}: {err}");
    }
    // A sparse 80 MiB file: over the cap, refused without reading it into memory.
    let big = env.path("big.json");
    std::fs::File::create(&big).and_then(|f| f.set_len(80 * 1024 * 1024)).expect("sparse file");
    let err = env.fails(&["import", big.to_str().expect("utf-8")], 2);
    assert!(err.contains("MiB"), "{err}");
    let err = env.fails(&["run", big.to_str().expect("utf-8")], 2);
    assert!(err.contains("MiB"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "refused quickly");
    assert_eq!(env.ok(&["build", "list", "--json"]).trim(), "[]", "nothing was created");
}
