//! Artifacts and rewinds from the command line: an artifact belongs to the milestone it
//! was recorded at; a rewind to that milestone or an earlier one invalidates it, and
//! `artifact list` and `build show` then show only the current artifacts unless asked
//! for all (marked). Export and import carry the marks.

use serde_json::Value;

use crate::common::{Env, redact_times};

fn add(env: &Env, build: &str, name: &str, kind: &str, uri: &str) -> Value {
    env.json(&["artifact", "add", build, "--name", name, "--kind", kind, "--uri", uri])
}

fn names(listed: &Value) -> Vec<&str> {
    listed.as_array().expect("a list").iter().map(|a| a["name"].as_str().expect("a name")).collect()
}

#[test]
fn a_rewind_invalidates_the_artifacts_of_the_milestones_it_reruns() {
    let env = Env::new().with_catalog();
    let b = env.build("art-1");
    env.advance_to(&b, 10);
    let log = add(&env, &b, "kickstart-log", "report", "file:///logs/kickstart.log");
    assert_eq!((log["milestone"].as_u64(), log["invalidated_at"].is_null()), (Some(10), true), "{log}");
    env.advance_to_from(&b, 10, 45);
    let ami = env.json(&[
        "artifact",
        "add",
        &b,
        "--name",
        "ami-us-east-1",
        "--kind",
        "image",
        "--uri",
        "ami-0a1b2c3d4e5f60718",
        "--cloud",
        "aws",
        "--region",
        "us-east-1",
    ]);
    assert_eq!((ami["cloud"].as_str(), ami["region"].as_str()), (Some("aws"), Some("us-east-1")), "{ami}");
    assert!(log.get("cloud").is_none(), "no --cloud, no cloud: {log}");
    assert_eq!(names(&env.json(&["artifact", "list", &b])), ["kickstart-log", "ami-us-east-1"]);

    env.ok(&["rewind", &b, "--to", "25", "--reason", "security role changed"]);
    let current = env.json(&["artifact", "list", &b]);
    assert_eq!(names(&current), ["kickstart-log"], "45 runs again: its image is not the build's any more");
    let all = env.json(&["artifact", "list", &b, "--all"]);
    assert_eq!(names(&all), ["kickstart-log", "ami-us-east-1"]);
    let ami = &all[1];
    assert_eq!(ami["milestone"], 45);
    assert_eq!(ami["cloud"], "aws", "the cloud is its own field, listed");
    let rewound = env.history(&b).into_iter().find(|e| e["kind"] == "rewound").expect("the rewind");
    assert_eq!(ami["invalidated_at"], rewound["at"], "invalidated by the rewind, at its time");

    insta::assert_snapshot!(
        "artifact_list_current",
        redact_times(&env.run(&["artifact", "list", &b]).transcript())
    );
    insta::assert_snapshot!(
        "artifact_list_all",
        redact_times(&env.run(&["artifact", "list", &b, "--all"]).transcript())
    );

    let shown = env.json(&["build", "show", &b]);
    assert_eq!(names(&shown["artifacts"]), ["kickstart-log"]);
    assert_eq!(
        names(&env.json(&["build", "show", &b, "--all"])["artifacts"]),
        ["kickstart-log", "ami-us-east-1"]
    );
    let text = env.ok(&["build", "show", &b]);
    assert!(text.contains("kickstart-log") && !text.contains("ami-us-east-1"), "{text}");
    assert!(text.contains("(1 artifact invalidated by a rewind is not shown; --all shows it)"), "{text}");
    let text = env.ok(&["build", "show", &b, "--all"]);
    assert!(text.contains("INVALIDATED") && text.contains("ami-us-east-1"), "{text}");

    // The marks travel with the document, into another store.
    let doc = env.path("art-1.json");
    std::fs::write(&doc, env.export(&b)).expect("write the export");
    let other = Env::new();
    other.ok(&["import", doc.to_str().expect("utf-8 path")]);
    assert_eq!(other.json(&["artifact", "list", &b, "--all"]), all);
    assert_eq!(names(&other.json(&["artifact", "list", &b])), ["kickstart-log"]);

    // Recording it again once 45 has run again makes it current again.
    env.advance_to_from(&b, 25, 45);
    add(&env, &b, "ami-us-east-1", "image", "ami-0fedcba987654321");
    assert_eq!(names(&env.json(&["artifact", "list", &b])), ["kickstart-log", "ami-us-east-1"]);
    assert_eq!(env.ok(&["artifact", "list", &b]).lines().count(), 3, "a header and two rows, no note");
}

#[test]
fn a_build_whose_artifacts_were_all_invalidated_says_so() {
    let env = Env::new().with_catalog();
    let b = env.build("art-2");
    env.advance_to(&b, 5);
    add(&env, &b, "disk", "disk", "file:///images/disk.qcow2");
    add(&env, &b, "manifest", "manifest", "file:///images/manifest.json");
    env.ok(&["rewind", &b, "--to", "0", "--reason", "new base image"]);
    assert_eq!(env.json(&["artifact", "list", &b]), Value::Array(Vec::new()));
    let text = env.ok(&["artifact", "list", &b]);
    assert_eq!(
        text,
        "build art-2 has no current artifacts\n(2 artifacts invalidated by a rewind are not shown; --all shows them)\n"
    );
}
