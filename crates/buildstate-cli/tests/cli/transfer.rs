//! `export` / `import`: a lossless round trip, and refusal of broken documents.

use crate::common::{Env, expect_error, read};

/// A build with something in every part of the document.
fn rich_build(env: &Env) -> String {
    let b = env.build("rt-1");
    env.ok(&["meta", "set", &b, "owner", "team-a"]);
    env.advance_to(&b, 25);
    env.ok(&["state", "start", &b, "25", "--log", "s3://logs/25.log"]);
    env.ok(&[
        "state",
        "fail",
        &b,
        "25",
        "--error",
        "boom \"quoted\"",
        "--details",
        r#"{"task":"x","n":[1,2]}"#,
        "--type",
        "ansible",
        "--exit-code",
        "-1",
    ]);
    env.ok(&["failure", "resolve", &b, "--notes", "fixed"]);
    env.ok(&["retry", &b, "--reason", "again"]);
    env.ok(&[
        "artifact",
        "add",
        &b,
        "--name",
        "ami",
        "--kind",
        "image",
        "--uri",
        "ami-1",
        "--region",
        "us-east-1",
    ]);
    b
}

#[test]
fn export_import_export_is_byte_equal() {
    let env = Env::new().with_catalog();
    let b = rich_build(&env);
    let file = env.path("rt-1.json");
    env.ok(&["export", &b, "--output", file.to_str().expect("utf-8")]);
    let exported = read(&file);
    assert_eq!(exported, env.export(&b), "--output and stdout agree");

    // Into an empty store: the catalog items the document names are registered.
    let other = Env::new();
    let out = other.ok(&["import", file.to_str().expect("utf-8")]);
    assert!(out.contains("imported build rt-1"), "{out}");
    assert_eq!(other.export(&b), exported);

    // From stdin, replacing.
    let r = other.run_stdin(&["import", "-", "--replace"], exported.clone());
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(other.export(&b), exported);

    // The same build again without --replace is a conflict.
    let r = other.run_stdin(&["import", "-"], exported.clone());
    let err = expect_error(&r, 5, "import twice");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(other.export(&b), exported);
}

#[test]
fn malformed_and_truncated_documents_are_refused() {
    let env = Env::new().with_catalog();
    let b = rich_build(&env);
    let doc = env.export(&b);
    let target = Env::new().with_catalog();
    let keep = target.build("keep-1");
    let before = target.export(&keep);
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "this is not json".to_owned()),
        ("empty", String::new()),
        ("truncated", doc[..doc.len() / 2].to_owned()),
        ("truncated near the end", doc[..doc.len() - 3].to_owned()),
        ("wrong format", doc.replace("buildstate.build/v1", "buildstate.build/v9")),
        ("bad state", doc.replace("\"current_state\": 25", "\"current_state\": 250")),
        ("bad token", doc.replace("bs1:", "bs0:")),
        ("unknown field", doc.replacen('{', "{\"extra\": 1,", 1)),
        ("a list", "[]".to_owned()),
    ];
    for (what, text) in cases {
        let r = target.run_stdin(&["import", "-"], text);
        let err = expect_error(&r, 7, what);
        assert!(err.contains("was not imported"), "{what}: {err}");
        assert_eq!(target.export(&keep), before, "{what} changed the store");
        assert_eq!(target.json(&["build", "list"]).as_array().map(Vec::len), Some(1), "{what}");
    }
    let missing = target.fails(&["import", "/nonexistent/doc.json"], 2);
    assert!(missing.contains("cannot read"), "{missing}");
    let r = target.run_stdin(&["import", "-"], vec![0xff, 0xfe, 0x00]);
    expect_error(&r, 7, "binary");
}
