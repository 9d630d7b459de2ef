//! The lifecycle tour: create, run, fail, retry, rewind, deliver — and everything a
//! person or a script reads along the way.

use serde_json::Value;

use crate::common::Env;

#[test]
fn tour_of_a_build() {
    let env = Env::new().with_catalog();
    let init = env.ok(&["init"]);
    assert!(init.contains("schema version"), "{init}");
    tour(&env);
}

/// The same tour through `buildstate serve`: the CLI with a server URL and a token
/// only prints and exits as it does against the store itself.
#[test]
fn tour_of_a_build_through_the_server() {
    let env = Env::served().with_catalog();
    let refused = env.fails(&["init"], 2);
    assert!(refused.contains("does not work through --server"), "{refused}");
    tour(&env);
}

fn tour(env: &Env) {
    // Without --number the store allocates <os>-<image>-<platform>-<date>-NNN and
    // prints only that, for `B=$(buildstate build create …)`.
    let out = env.ok(&[
        "build",
        "create",
        "--platform",
        "aws-commercial",
        "--os",
        "rhel-9.6",
        "--image",
        "base",
        "--meta",
        "owner=team-a",
        "--ci-url",
        "https://ci.example/jobs/1",
    ]);
    let b = out.trim().to_owned();
    assert!(b.starts_with("rhel-9.6-base-aws-commercial-") && b.ends_with("-001"), "{b}");
    assert_eq!(out.lines().count(), 1);

    env.ok(&["state", "start", &b, "0", "--log", "/var/log/build 0.log"]);
    env.ok(&["state", "complete", &b, "0", "--exit-code", "0"]);
    env.advance_to_from(&b, 5, 25);
    env.ok(&["state", "start", &b, "25"]);
    let failed = env.ok(&[
        "state",
        "fail",
        &b,
        "25",
        "--error",
        "selinux policy did not load",
        "--type",
        "ansible",
        "--component",
        "25-security.yml",
        "--details",
        r#"{"task":"enforce","host":"10.0.0.5"}"#,
        "--exit-code",
        "2",
    ]);
    assert!(failed.contains("attempt 1 of 3"), "{failed}");
    env.ok(&["retry", &b, "--reason", "mirror fixed"]);
    env.ok(&["state", "complete", &b, "25"]);
    env.advance_to_from(&b, 30, 60);
    env.ok(&["rewind", &b, "--to", "45", "--reason", "storage layout changed"]);
    env.advance_to_from(&b, 45, 100);
    let done = env.ok(&["state", "complete", &b, "100"]);
    assert!(done.contains("delivered"), "{done}");

    let shown = env.json(&["build", "show", &b]);
    assert_eq!(shown["build"]["status"], "completed");
    assert_eq!(shown["build"]["state"], 100);
    assert_eq!(shown["build"]["metadata"]["owner"], "team-a");
    assert_eq!(shown["build"]["ci_url"], "https://ci.example/jobs/1");
    assert_eq!(shown["failures"][0]["details"]["host"], "10.0.0.5");
    assert_eq!(shown["failures"][0]["type"], "ansible");
    let attempts = shown["attempts"].as_array().expect("attempts");
    assert!(attempts.iter().any(|a| a["state"] == 25 && a["status"] == "failed"));
    let kinds: Vec<&str> =
        shown["history"].as_array().expect("history").iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["created", "started", "completed", "failed", "retried", "rewound"] {
        assert!(kinds.contains(&k), "history lacks {k}: {kinds:?}");
    }

    let text = env.ok(&["build", "show", &b]);
    for needle in ["100 (delivered)", "attempts:", "history:", "rewound", "owner"] {
        assert!(text.contains(needle), "build show lacks {needle}:\n{text}");
    }
    let history = env.ok(&["history", &b]);
    assert!(history.lines().next().is_some_and(|h| h.starts_with("SEQ")), "{history}");
    assert!(history.contains("60 → 45 (storage)"), "rewind shown with its origin:\n{history}");
}

#[test]
fn list_filters() {
    list_filters_in(&Env::new().with_catalog());
}

#[test]
fn list_filters_through_the_server() {
    list_filters_in(&Env::served().with_catalog());
}

fn list_filters_in(env: &Env) {
    env.ok(&["os", "add", "ubuntu-24.04", "--family", "ubuntu", "--major", "24", "--minor", "4"]);
    let a = env.build("a-1");
    let b = env.build("b-1");
    env.ok(&[
        "build",
        "create",
        "--platform",
        "aws-commercial",
        "--os",
        "ubuntu-24.04",
        "--image",
        "base",
        "--number",
        "c-1",
    ]);
    env.advance_to(&a, 10);
    env.ok(&["state", "fail", &b, "0", "--class", "persistent", "--error", "no"]);

    let numbers = |args: &[&str]| -> Vec<String> {
        let v = env.json(args);
        v.as_array()
            .expect("array")
            .iter()
            .map(|b| b["number"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(numbers(&["build", "list"]).len(), 3);
    assert_eq!(numbers(&["build", "list", "--state", "10"]), ["a-1"]);
    assert_eq!(numbers(&["build", "list", "--status", "failed"]), ["b-1"]);
    assert_eq!(numbers(&["build", "list", "--needs-intervention"]), ["b-1"]);
    assert_eq!(numbers(&["build", "list", "--os", "ubuntu-24.04"]), ["c-1"]);
    assert_eq!(numbers(&["build", "list", "--platform", "aws-commercial", "--image", "base"]).len(), 3);
    assert_eq!(numbers(&["build", "list", "--limit", "2"]).len(), 2);
    assert_eq!(numbers(&["build", "list", "--since", "2000-01-01"]).len(), 3);
    assert!(numbers(&["build", "list", "--since", "2999-01-01T00:00:00Z"]).is_empty());
    env.fails(&["build", "list", "--since", "yesterday"], 2);
    // How long ago, as reports and the API take it (a hostile review found only the API did).
    assert_eq!(numbers(&["build", "list", "--since", "90d"]).len(), 3);

    let table = env.ok(&["build", "list"]);
    assert!(table.starts_with("BUILD"), "{table}");
    assert_eq!(table.lines().count(), 4);
}

#[test]
fn cancel_metadata_artifacts_and_failures() {
    cancel_metadata_artifacts_and_failures_in(&Env::new().with_catalog());
}

#[test]
fn cancel_metadata_artifacts_and_failures_through_the_server() {
    cancel_metadata_artifacts_and_failures_in(&Env::served().with_catalog());
}

fn cancel_metadata_artifacts_and_failures_in(env: &Env) {
    let b = env.build("m-1");
    env.ok(&["meta", "set", &b, "ami/us-east-1", "ami-0123"]);
    assert_eq!(env.ok(&["meta", "get", &b, "ami/us-east-1"]), "ami-0123\n");
    let listed = env.json(&["meta", "list", &b]);
    assert_eq!(listed["ami/us-east-1"], "ami-0123");
    assert!(env.fails(&["meta", "get", &b, "missing"], 3).contains("missing"));

    // Size and digest computed from a local file, streaming.
    let file = env.path("disk.qcow2");
    std::fs::write(&file, b"abc").expect("write");
    let f = file.to_str().expect("utf-8 path");
    env.ok(&[
        "artifact",
        "add",
        &b,
        "--name",
        "disk",
        "--kind",
        "disk",
        "--uri",
        "file:///disk.qcow2",
        "--file",
        f,
    ]);
    let arts = env.json(&["artifact", "list", &b]);
    assert_eq!(arts[0]["size_bytes"], 3);
    assert_eq!(arts[0]["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // A digest that does not match the file is refused, and nothing is recorded.
    let bad = "0".repeat(64);
    let err = env.fails_unchanged(
        &b,
        &[
            "artifact", "add", &b, "--name", "disk2", "--kind", "disk", "--uri", "x", "--file", f,
            "--sha256", &bad,
        ],
        2,
    );
    assert!(err.contains("does not match"), "{err}");
    env.ok(&[
        "artifact",
        "add",
        &b,
        "--name",
        "ami",
        "--kind",
        "image",
        "--uri",
        "ami-0123",
        "--region",
        "us-east-1",
    ]);
    assert_eq!(env.json(&["artifact", "list", &b]).as_array().map(Vec::len), Some(2));

    env.ok(&["state", "fail", &b, "0", "--error", "boom", "--type", "network"]);
    let failures = env.json(&["failure", "list", "--build", &b, "--unresolved"]);
    assert_eq!(failures[0]["build"], "m-1");
    assert_eq!(failures[0]["resolved"], false);
    assert_eq!(env.json(&["failure", "list", "--type", "network"]).as_array().map(Vec::len), Some(1));
    assert_eq!(env.json(&["failure", "list", "--type", "packer"]).as_array().map(Vec::len), Some(0));
    env.fails(&["failure", "resolve", &b, "--failure", "9", "--notes", "x"], 3);
    let out = env.ok(&["failure", "resolve", &b, "--failure", "1", "--notes", "DNS fixed"]);
    assert!(out.contains("resolved 1"), "{out}");
    assert_eq!(env.json(&["failure", "list", "--unresolved"]).as_array().map(Vec::len), Some(0));

    let cancelled = env.json(&["build", "cancel", &b, "--reason", "not needed"]);
    assert_eq!(cancelled["status"], "cancelled");
    // Metadata stays writable on a terminal build: it describes, it does not move.
    env.ok(&["meta", "set", &b, "note", "kept"]);
}

#[test]
fn catalog_commands() {
    let env = Env::new().with_catalog();
    let shown = env.json(&["platform", "show", "aws-commercial"]);
    assert_eq!(shown["provider"], "aws");
    assert_eq!(shown["region"], "us-east-1");
    let list: Value = env.json(&["os", "list"]);
    assert_eq!(list[0]["name"], "rhel-9.6");
    env.fails(&["platform", "add", "aws-commercial", "--provider", "aws"], 5);
    env.fails(&["platform", "show", "nowhere"], 3);
    env.fails(&["image-type", "remove", "nothing"], 3);
    env.build("in-use-1");
    env.fails(&["platform", "remove", "aws-commercial"], 5);
    env.ok(&["image-type", "add", "hana", "--description", "SAP HANA"]);
    assert!(env.ok(&["image-type", "remove", "hana"]).contains("removed"));
    env.fails(&["build", "create", "--platform", "nowhere", "--os", "rhel-9.6", "--image", "base"], 3);
}
