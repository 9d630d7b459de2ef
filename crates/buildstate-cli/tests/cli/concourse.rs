//! `buildstate concourse check|in|out`, run as Concourse runs a resource: one JSON
//! request on stdin, the build metadata in the environment, one JSON answer on stdout,
//! logs on stderr, and a non-zero exit failing the step.

use serde_json::{Value, json};

use crate::common::{Env, Run, bare_cmd};

/// Concourse's build metadata for build `id` of job `bake`.
fn metadata(id: &str) -> [(&'static str, String); 6] {
    [
        ("BUILD_ID", id.to_owned()),
        ("BUILD_NAME", "7".to_owned()),
        ("BUILD_JOB_NAME", "bake".to_owned()),
        ("BUILD_PIPELINE_NAME", "images".to_owned()),
        ("BUILD_TEAM_NAME", "main".to_owned()),
        ("ATC_EXTERNAL_URL", "https://ci.example.com".to_owned()),
    ]
}

/// `/opt/resource/OP` with `request` on stdin (a clean environment: the request names
/// the store), and for `in`/`out` the step's directory.
fn resource(env: &Env, op: &str, request: &Value, build_id: &str) -> Run {
    let dir = env.path(&format!("step-{op}"));
    std::fs::create_dir_all(&dir).expect("a step directory");
    let mut c = bare_cmd();
    c.args(["concourse", op]);
    if op != "check" {
        c.arg(&dir);
        c.envs(metadata(build_id));
    }
    c.write_stdin(request.to_string()).output().expect("run the resource").into()
}

fn source(env: &Env, extra: Value) -> Value {
    let mut s = json!({"store": env.db, "platform": "aws-commercial", "os": "rhel-9.6", "image": "base"});
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    s
}

fn answer(r: &Run) -> Value {
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("one JSON document on stdout: {e}: {r:?}"))
}

/// Starts and completes every milestone of `b` up to and including `upto`.
fn advance(env: &Env, b: &str, upto: u8) {
    let mut code = env.json(&["build", "show", b])["build"]["state"].as_u64().expect("a state") as u8;
    while code <= upto {
        env.ok(&["state", "start", b, &code.to_string()]);
        env.ok(&["state", "complete", b, &code.to_string()]);
        code = env.json(&["build", "show", b])["build"]["state"].as_u64().expect("a state") as u8;
    }
}

#[test]
fn check_answers_the_builds_past_the_milestone_oldest_first() {
    let env = Env::new().with_catalog();
    let (a, b, c) = (env.build("cc-a"), env.build("cc-b"), env.build("cc-c"));
    let src = source(&env, json!({"milestone": 10}));
    assert_eq!(answer(&resource(&env, "check", &json!({"source": src}), "")), json!([]), "none reached yet");

    // b reaches 10 before a, although a was created first: versions go by reaching.
    advance(&env, &b, 10);
    advance(&env, &a, 10);
    advance(&env, &c, 5);
    let latest = answer(&resource(&env, "check", &json!({"source": src}), ""));
    let latest = latest.as_array().expect("an array");
    assert_eq!(latest.len(), 1, "without a version, the newest only: {latest:?}");
    assert_eq!(latest[0]["build"], "cc-a");
    assert!(
        latest[0].as_object().expect("an object").values().all(Value::is_string),
        "strings only: {latest:?}"
    );

    let all = answer(&resource(&env, "check", &json!({"source": src, "version": null}), ""));
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    // Given the version of b (as an earlier check gave it): b itself, then a.
    let history = env.history(&b);
    let at =
        history.iter().find(|e| e["kind"] == "completed" && e["state"] == 10).expect("completed 10")["at"]
            .clone();
    let b_version = json!({"build": "cc-b", "id": env.json(&["build", "show", &b])["build"]["id"], "at": at});
    let from_b = answer(&resource(&env, "check", &json!({"source": src, "version": b_version}), ""));
    let names: Vec<&str> =
        from_b.as_array().expect("an array").iter().filter_map(|v| v["build"].as_str()).collect();
    assert_eq!(names, ["cc-b", "cc-a"], "the given version included, then newer ones: {from_b}");

    // Delivered is the default milestone.
    let delivered = answer(&resource(&env, "check", &json!({"source": source(&env, json!({}))}), ""));
    assert_eq!(delivered, json!([]), "{delivered}");
}

#[test]
fn in_writes_the_build_its_artifacts_and_its_state_and_fails_for_a_version_gone() {
    let env = Env::new().with_catalog();
    let b = env.build("cc-in");
    advance(&env, &b, 10);
    env.ok(&[
        "artifact",
        "add",
        &b,
        "--name",
        "ami.us-east-1",
        "--kind",
        "image",
        "--uri",
        "ami-0abc",
        "--region",
        "us-east-1",
        "--cloud",
        "aws",
    ]);
    let src = source(&env, json!({"milestone": 10}));
    let versions = answer(&resource(&env, "check", &json!({"source": src}), ""));
    let version = versions[0].clone();
    let got = answer(&resource(&env, "in", &json!({"source": src, "version": version}), "100"));
    assert_eq!(got["version"], version, "{got}");
    assert!(
        got["metadata"]
            .as_array()
            .is_some_and(|m| m.iter().any(|e| e["name"] == "build" && e["value"] == "cc-in")),
        "{got}"
    );
    let dir = env.path("step-in");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("build.json")).expect("build.json"))
            .expect("JSON");
    assert_eq!(doc["build_number"], "cc-in", "the export document: {doc}");
    let arts: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("artifacts.json")).expect("artifacts.json"))
            .expect("JSON");
    assert_eq!(arts["images"]["aws"]["us-east-1"]["id"], "ami-0abc", "{arts}");
    assert_eq!(std::fs::read_to_string(dir.join("state")).expect("state"), "15\n");

    // Rewound to the milestone: the version is gone, and `in` says so (non-zero).
    env.ok(&["rewind", &b, "--to", "10", "--reason", "rebuild"]);
    let r = resource(&env, "in", &json!({"source": src, "version": version}), "101");
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("no longer exists") && r.stdout.is_empty(), "{r:?}");
    let bogus =
        json!({"build": "x", "id": "01a2424a-b6f7-70c6-a388-339cdbea2d23", "at": "2026-01-01T00:00:00Z"});
    let r = resource(&env, "in", &json!({"source": src, "version": bogus}), "102");
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn out_creates_and_records_once_per_concourse_build_and_step() {
    let env = Env::new().with_catalog();
    let src = source(&env, json!({"pipeline": "images"}));
    let create = json!({"source": src, "params": {"create": true}});
    let made = answer(&resource(&env, "out", &create, "500"));
    let number = made["version"]["build"].as_str().expect("a number").to_owned();
    assert_eq!(number, "rhel-9.6-base-aws-commercial-cc500");
    // Retried: the same build, nothing created twice.
    let again = answer(&resource(&env, "out", &create, "500"));
    assert_eq!(again["version"]["id"], made["version"]["id"]);
    assert_eq!(env.json(&["build", "list"]).as_array().map(Vec::len), Some(1));
    let shown = env.json(&["build", "show", &number]);
    assert_eq!(
        shown["build"]["ci_url"],
        "https://ci.example.com/teams/main/pipelines/images/jobs/bake/builds/7"
    );
    assert_eq!(shown["build"]["metadata"]["pipeline"], "images", "{shown}");

    let start = json!({"source": src, "params": {"build": number, "action": "start", "state": 0}});
    answer(&resource(&env, "out", &start, "501"));
    let complete = json!({"source": src, "params": {"build": number, "action": "complete", "state": "0"}});
    answer(&resource(&env, "out", &complete, "501"));
    // A retried put (same BUILD_ID and step) writes nothing again and succeeds.
    let retried = resource(&env, "out", &complete, "501");
    assert_eq!(retried.code, 0, "{retried:?}");
    assert!(retried.stderr.contains("nothing written again"), "{retried:?}");
    let history = env.history(&number);
    assert_eq!(history.iter().filter(|e| e["kind"] == "completed").count(), 1, "{history:#?}");
    assert!(
        history
            .iter()
            .any(|e| e["actor"].as_str().is_some_and(|a| a.contains("concourse main/images/bake #7")))
    );

    // A write refused fails the step: never green.
    let behind = json!({"source": src, "params": {"build": number, "action": "complete", "state": 0}});
    let r = resource(&env, "out", &behind, "502");
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");

    // Fail with a message and type; from the directory of a `get`.
    let step = env.path("step-out");
    std::fs::create_dir_all(step.join("image")).expect("an input");
    let doc = env.ok(&["export", &number]);
    std::fs::write(step.join("image/build.json"), doc).expect("write");
    env.ok(&["state", "start", &number, "5"]);
    let fail = json!({"source": src, "params": {"from": "image", "action": "fail", "state": 5, "error": "smoke test failed", "type": "test", "class": "persistent"}});
    let got = answer(&resource(&env, "out", &fail, "503"));
    assert!(got["metadata"].as_array().is_some_and(|m| m.iter().any(|e| e["value"] == "failed")), "{got}");
    let f = &env.failures(&number)[0];
    assert_eq!(
        (f["message"].as_str(), f["type"].as_str(), f["class"].as_str()),
        (Some("smoke test failed"), Some("test"), Some("persistent"))
    );
}

#[test]
fn bad_requests_and_unreachable_stores_fail_the_step_with_a_reason() {
    let env = Env::new().with_catalog();
    env.build("cc-bad");
    let run_raw = |op: &str, stdin: &str, build_id: Option<&str>| -> Run {
        let dir = env.path("step-bad");
        std::fs::create_dir_all(&dir).expect("dir");
        let mut c = bare_cmd();
        c.args(["concourse", op]);
        if op != "check" {
            c.arg(&dir);
        }
        if let Some(id) = build_id {
            c.envs(metadata(id));
        }
        c.write_stdin(stdin.to_owned()).output().expect("run").into()
    };
    let db = env.db.display().to_string();
    let cases: Vec<(&str, String, Option<&str>, i32, &str)> = vec![
        ("check", String::new(), None, 2, "no request on standard input"),
        ("check", "{\"source\": ".to_owned(), None, 2, "not the JSON Concourse sends"),
        (
            "check",
            format!(r#"{{"source": {{"store": "{db}", "milstone": 90}}}}"#),
            None,
            2,
            "unknown field `milstone`",
        ),
        ("check", r#"{"source": {}}"#.to_owned(), None, 2, "source names no store"),
        (
            "check",
            format!(r#"{{"source": {{"store": "{db}", "token": "bst_x"}}}}"#),
            None,
            2,
            "source.token is for a server",
        ),
        (
            "check",
            format!(r#"{{"source": {{"store": "{db}", "milestone": 97}}}}"#),
            None,
            2,
            "milestone 97 is not in the catalog of build cc-bad",
        ),
        (
            "check",
            format!(r#"{{"source": {{"store": "{db}", "milestone": "soon"}}}}"#),
            None,
            2,
            "source.milestone",
        ),
        ("check", r#"{"source": {"store": "/nonexistent/dir/b.db"}}"#.to_owned(), None, 3, "no store"),
        (
            "check",
            r#"{"source": {"server": "http://127.0.0.1:9", "token": "bst_secretsecret"}}"#.to_owned(),
            None,
            6,
            "",
        ),
        (
            "out",
            format!(
                r#"{{"source": {{"store": "{db}"}}, "params": {{"build": "cc-bad", "action": "start", "state": 0}}}}"#
            ),
            None,
            2,
            "BUILD_ID is not set",
        ),
        (
            "out",
            format!(
                r#"{{"source": {{"store": "{db}"}}, "params": {{"build": "cc-bad", "action": "explode", "state": 0}}}}"#
            ),
            Some("9"),
            2,
            "params.action",
        ),
        (
            "out",
            format!(
                r#"{{"source": {{"store": "{db}"}}, "params": {{"build": "cc-bad", "actoin": "start"}}}}"#
            ),
            Some("9"),
            2,
            "unknown field `actoin`",
        ),
        (
            "out",
            format!(
                r#"{{"source": {{"store": "{db}"}}, "params": {{"from": "../etc", "action": "start", "state": 0}}}}"#
            ),
            Some("9"),
            2,
            "must be an input's name",
        ),
        ("in", format!(r#"{{"source": {{"store": "{db}"}}}}"#), Some("9"), 2, "needs the version"),
    ];
    for (op, stdin, id, code, says) in cases {
        let r = run_raw(op, &stdin, id);
        assert_eq!(r.code, code, "{op} {stdin}: {r:?}");
        assert!(r.stderr.contains(says), "{op} {stdin}: {r:?}");
        assert!(!r.stderr.contains("bst_secretsecret"), "no token in errors: {r:?}");
        if code != 0 {
            assert!(r.stdout.is_empty(), "nothing on stdout when failing: {r:?}");
        }
    }
    assert_eq!(env.history("cc-bad").len(), 1, "nothing recorded by the refused requests");
}

/// The image's `/opt/resource/{check,in,out}` (concourse/ in the repository) are the
/// same resource: run as Concourse runs them, with the binary on PATH.
#[test]
fn the_resource_scripts_of_the_image_speak_the_same_protocol() {
    let env = Env::new().with_catalog();
    let b = env.build("cc-script");
    advance(&env, &b, 5);
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../concourse");
    let bin_dir =
        std::path::Path::new(crate::common::bin()).parent().expect("the binary's directory").to_owned();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let request = json!({"source": source(&env, json!({"milestone": 5}))});
    let out = std::process::Command::new(scripts.join("check"))
        .env_clear()
        .env("PATH", &path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(request.to_string().as_bytes())?;
            child.wait_with_output()
        })
        .expect("run /opt/resource/check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let versions: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(versions[0]["build"], "cc-script", "{versions}");
    let dockerfile = std::fs::read_to_string(scripts.join("Dockerfile")).expect("the Dockerfile");
    assert!(dockerfile.contains("/opt/resource/"), "the image puts them where Concourse looks");
}

/// From a hostile review of the resource: retried puts at the same moment, params of
/// another action or cell, a version never given, a build of another catalog, and a
/// PostgreSQL store whose password comes from the credential manager.
#[test]
fn puts_and_versions_the_review_found_are_handled() {
    let env = Env::new().with_catalog().with_images(&["hana"]);
    let b = env.build("cc-rev");
    let src = source(&env, json!({}));
    // The same put retried eight times at once: one record, and every one green.
    let start = json!({"source": src, "params": {"build": b, "action": "start", "state": 0}});
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let mut c = std::process::Command::new(crate::common::bin());
            c.args(["concourse", "out", env.dir.path().to_str().expect("utf-8")])
                .env_clear()
                .envs(metadata("700"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().expect("start");
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(start.to_string().as_bytes()).expect("write");
            child
        })
        .collect();
    for child in runs {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(env.history(&b).iter().filter(|e| e["kind"] == "started").count(), 1);

    for (params, says) in [
        (json!({"build": b}), "params ask for nothing"),
        (
            json!({"build": b, "action": "complete", "state": 0, "reason": "x"}),
            "`reason` is for `action: skip`",
        ),
        (json!({"build": b, "action": "complete", "state": 0, "error": "x"}), "are for `action: fail`"),
    ] {
        let r = resource(&env, "out", &json!({"source": src, "params": params}), "701");
        assert_eq!(r.code, 2, "{params}: {r:?}");
        assert!(r.stderr.contains(says), "{r:?}");
    }
    let hana = env.build_with("hana", &[]);
    let other = json!({"source": src, "params": {"build": hana, "action": "start", "state": 0}});
    let r = resource(&env, "out", &other, "702");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is of image hana, not the source's base"), "{r:?}");

    // A version whose time is none of the build's events was never given.
    env.ok(&["state", "complete", &b, "0"]);
    let check =
        answer(&resource(&env, "check", &json!({"source": source(&env, json!({"milestone": 0}))}), ""));
    let mut forged = check[0].clone();
    forged["at"] = json!("2099-01-01T00:00:00Z");
    let r = resource(&env, "in", &json!({"source": src, "version": forged}), "703");
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("never gave that version"), "{r:?}");

    // A build of a catalog without the milestone is passed over, not an error for all.
    env.write(
        "short.yml",
        "- {code: 0, name: initial}\n- {code: 50, name: half}\n- {code: 100, name: done}\n",
    );
    env.build_with("base", &["--catalog", env.path("short.yml").to_str().expect("utf-8")]);
    let r = resource(&env, "check", &json!({"source": source(&env, json!({"milestone": 0}))}), "");
    assert_eq!(r.code, 0, "{r:?}");
    let r = resource(&env, "check", &json!({"source": source(&env, json!({"milestone": 5}))}), "");
    assert_eq!(answer(&r).as_array().map(Vec::len), Some(0), "{r:?}");
}

/// A password-protected PostgreSQL store: its password is `source.password` (from the
/// credential manager), since a resource's container sees no task params.
#[test]
fn a_postgres_store_takes_its_password_from_the_source() {
    let db = crate::common::PgDb::new();
    let env = Env::with_db(&db.url).with_catalog();
    env.build("cc-pg");
    let (scheme_user, rest) = db.url.split_once('@').expect("a user in the URL");
    let (user, password) = scheme_user.rsplit_once(':').expect("a password in the URL");
    let bare = format!("{user}@{rest}");
    let request = json!({"source": {"store": bare, "password": password, "milestone": 0}});
    let r = resource(&env, "check", &request, "");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains(password) || password.len() < 4, "no password in the log: {r:?}");
}

/// From a second hostile review: `in` fetched builds the source does not stand for or
/// that never got past its milestone, `out` answered with a version of a build only
/// created (which would trigger the jobs taking the resource), and an `out` to a
/// mistyped store created it.
#[test]
fn versions_are_only_ever_the_resources_own() {
    let env = Env::new().with_catalog().with_images(&["hana"]);
    let src = source(&env, json!({"milestone": 5, "pipeline": "images"}));
    // Created by a put, at 0: the version answered is no version of the resource's.
    let made = answer(&resource(&env, "out", &json!({"source": src, "params": {"create": true}}), "800"));
    assert_eq!(made["version"]["at"], "not-yet", "{made}");
    assert_eq!(answer(&resource(&env, "check", &json!({"source": src}), "")), json!([]));
    let b = made["version"]["build"].as_str().expect("a number").to_owned();
    // The implicit get of it works (it is this resource's build), and says where it is.
    let got = answer(&resource(&env, "in", &json!({"source": src, "version": made["version"]}), "800"));
    assert_eq!(got["version"], made["version"]);
    advance(&env, &b, 5);
    let versions = answer(&resource(&env, "check", &json!({"source": src}), ""));
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    // A put that leaves another build short of 5 answers the resource's newest, unchanged.
    let other = answer(&resource(
        &env,
        "out",
        &json!({"source": src, "params": {"create": true, "number": "cc-second"}}),
        "801",
    ));
    assert_eq!(other["version"], versions[0], "{other}");

    // A version of a build the source does not select (another image), or a time at
    // which the build was not past the milestone, is none of this resource's.
    let hana = env.build_with("hana", &["--number", "cc-hana"]);
    advance(&env, &hana, 5);
    let hana_src = source(&env, json!({"milestone": 5, "image": "hana"}));
    let hana_version = answer(&resource(&env, "check", &json!({"source": hana_src}), ""))[0].clone();
    let r = resource(&env, "in", &json!({"source": src, "version": hana_version}), "802");
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("not a build of this resource's source"), "{r:?}");
    let history = env.history(&b);
    let created_at = history[0]["at"].clone();
    let early = json!({"build": b, "id": versions[0]["id"], "at": created_at});
    let r = resource(&env, "in", &json!({"source": src, "version": early}), "803");
    assert_eq!(r.code, 3, "{r:?}");

    // A store that is not there is not created by a put.
    let typo = env.path("typo.db");
    let bad = json!({"source": {"store": typo, "platform": "aws-commercial", "os": "rhel-9.6", "image": "base"}, "params": {"create": true}});
    let r = resource(&env, "out", &bad, "804");
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!typo.exists(), "no store made at a mistyped path");
}
