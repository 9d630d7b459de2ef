//! First use without ceremony: a fresh store and a new build go straight to the first
//! milestone a pipeline really tracks; milestones a pipeline does not track are skipped
//! on request, recorded; a team's own catalog is declared once in a file; and names
//! missing from the catalog say exactly which command adds them.

use serde_json::Value;

use crate::common::{Env, Run, expect_error};

/// `buildstate ARGS…` run in the fixture's directory (exec writes logs beside the store).
fn exec(env: &Env, args: &[&str]) -> Run {
    env.cmd().current_dir(env.dir.path()).args(args).output().expect("run buildstate").into()
}

/// `build create` of rhel-9.6/base/aws-commercial with a fixed number, on a store that
/// may lack them: `--add-missing` adds the well-known names.
fn create(env: &Env, number: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "build",
        "create",
        "--platform",
        "aws-commercial",
        "--os",
        "rhel-9.6",
        "--image",
        "base",
        "--number",
        number,
        "--add-missing",
    ];
    args.extend_from_slice(extra);
    let out = env.ok(&args);
    assert_eq!(out.trim(), number);
    number.to_owned()
}

/// `(kind, state, message)` of every event after `created`.
fn events(env: &Env, b: &str) -> Vec<(String, u64, String)> {
    env.history(b)
        .iter()
        .skip(1)
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_u64().unwrap_or(999),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn ev(kind: &str, state: u64, message: &str) -> (String, u64, String) {
    (kind.to_owned(), state, message.to_owned())
}

const IMPLICIT_5: &str = "completed implicitly: the first tracked milestone was 5";
const NOT_TRACKED: &str = "not tracked by this pipeline";

/// Exports the build, imports the document again in place: replay accepts the history.
fn round_trips(env: &Env, b: &str) {
    let doc = env.path(&format!("{b}.json"));
    env.ok(&["export", b, "--output", doc.to_str().expect("utf-8 path")]);
    env.ok(&["import", doc.to_str().expect("utf-8 path"), "--replace"]);
    assert_eq!(env.export(b), std::fs::read_to_string(&doc).expect("exported document"), "{b} round trip");
}

#[test]
fn a_new_build_is_exec_d_at_its_first_milestone_directly() {
    let env = Env::new();
    let b = create(&env, "first-1", &[]);

    let r = exec(&env, &["exec", &b, "5", "--", "sh", "-c", "echo hi"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hi\n"), "{r:?}");
    assert_eq!(
        events(&env, &b),
        [ev("completed", 0, IMPLICIT_5), ev("started", 5, ""), ev("completed", 5, "")],
    );
    let shown = env.show(&b);
    assert_eq!((shown["state"].as_u64(), shown["status"].as_str()), (Some(10), Some("running")), "{shown}");
    // 0 and 5 were one transition: the implicit completion is no separate version.
    assert_eq!(shown["version"].as_u64(), Some(3), "created 1, exec's start 2, its completion 3: {shown}");
    let zero = &env.history(&b)[1];
    assert_eq!((zero["attempt"].as_u64(), zero["duration_ms"].as_u64()), (Some(1), Some(0)), "{zero}");
    round_trips(&env, &b);
}

#[test]
fn state_start_complete_and_fail_act_on_the_first_milestone_directly() {
    let env = Env::new();
    let started = create(&env, "first-2", &[]);
    env.ok(&["state", "start", &started, "5"]);
    assert_eq!(events(&env, &started), [ev("completed", 0, IMPLICIT_5), ev("started", 5, "")]);
    env.ok(&["state", "complete", &started, "5"]);
    assert_eq!(env.show(&started)["state"].as_u64(), Some(10));

    let completed = create(&env, "first-3", &[]);
    let out = env.ok(&["state", "complete", &completed, "5"]);
    assert!(out.contains("completed 5 (kickstart) of build first-3; next: 10 (green-image)"), "{out}");
    assert_eq!(events(&env, &completed), [ev("completed", 0, IMPLICIT_5), ev("completed", 5, "")]);

    let failed = create(&env, "first-4", &[]);
    env.ok(&["state", "fail", &failed, "5", "--error", "kickstart timed out", "--type", "packer"]);
    assert_eq!(
        events(&env, &failed),
        [ev("completed", 0, IMPLICIT_5), ev("failed", 5, "kickstart timed out")]
    );
    let failures = env.failures(&failed);
    assert_eq!((failures.len(), failures[0]["state"].as_u64()), (1, Some(5)), "{failures:?}");
    for b in [&started, &completed, &failed] {
        round_trips(&env, b);
    }

    // Once 0 is tracked by hand, nothing is implicit any more.
    let tracked = create(&env, "first-5", &[]);
    env.ok(&["state", "start", &tracked, "0"]);
    env.fails_unchanged(&tracked, &["state", "complete", &tracked, "5"], 4);
}

#[test]
fn a_later_milestone_is_refused_with_a_hint_and_reached_with_skip_to_here() {
    let env = Env::new();
    let b = create(&env, "skip-1", &[]);
    let marker = env.path("ran");
    let touch = format!("touch {}", marker.display());
    for args in [
        vec!["state", "start", &b, "25"],
        vec!["state", "complete", &b, "25"],
        vec!["state", "fail", &b, "25", "--error", "x"],
        vec!["exec", &b, "25", "--", "sh", "-c", &touch],
    ] {
        let before = env.export(&b);
        let r = exec(&env, &args);
        let err = expect_error(&r, 4, &format!("{args:?}"));
        assert!(err.contains("is at 0 (initial), not 25"), "{err}");
        let hint = r.stderr.lines().nth(1).unwrap_or_default();
        assert_eq!(
            hint,
            "hint: if this pipeline does not track 5, 10, 15, 20, pass --skip-to-here to record them as \
             skipped (\"not tracked by this pipeline\") first",
            "{args:?}"
        );
        assert_eq!(env.export(&b), before, "{args:?} changed the build");
    }
    assert!(!marker.exists(), "a refused exec ran its command");

    env.ok(&["state", "start", &b, "25", "--skip-to-here"]);
    let skipped = |codes: &[u64]| codes.iter().map(|&c| ev("skipped", c, NOT_TRACKED)).collect::<Vec<_>>();
    let mut expected = vec![ev("completed", 0, IMPLICIT_5)];
    expected.extend(skipped(&[5, 10, 15, 20]));
    expected.push(ev("started", 25, ""));
    assert_eq!(events(&env, &b), expected);
    env.ok(&["state", "complete", &b, "25"]);

    // exec skips too, then runs the command as the attempt at its milestone.
    let r = exec(&env, &["exec", &b, "40", "--skip-to-here", "--", "sh", "-c", "echo at 40"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "at 40\n"), "{r:?}");
    // complete and fail as well.
    env.ok(&["state", "complete", &b, "50", "--skip-to-here"]);
    env.ok(&["state", "fail", &b, "60", "--skip-to-here", "--error", "deploy failed"]);
    let tail: Vec<_> = events(&env, &b).split_off(expected.len() + 1);
    let mut want = skipped(&[30, 35]);
    want.extend([ev("started", 40, ""), ev("completed", 40, "")]);
    want.extend(skipped(&[45]));
    want.push(ev("completed", 50, ""));
    want.extend(skipped(&[55]));
    want.push(ev("failed", 60, "deploy failed"));
    assert_eq!(tail, want);

    // The milestone the build is at, or one behind: --skip-to-here skips nothing.
    env.ok(&["retry", &b]);
    env.ok(&["state", "start", &b, "60", "--skip-to-here"]);
    env.fails_unchanged(&b, &["state", "complete", &b, "55", "--skip-to-here"], 4);
    // A code outside the catalog: refused before anything is skipped.
    env.ok(&["state", "complete", &b, "60"]);
    env.fails_unchanged(&b, &["state", "start", &b, "77", "--skip-to-here"], 4);
    // An open attempt is not skipped over.
    env.ok(&["state", "start", &b, "65"]);
    let err = env.fails_unchanged(&b, &["state", "start", &b, "75", "--skip-to-here"], 4);
    assert!(err.contains("still running"), "{err}");
    round_trips(&env, &b);
}

#[test]
fn state_skip_records_the_milestone_and_advances() {
    let env = Env::new();
    let b = create(&env, "skip-2", &[]);
    // On a new build the first milestone is skipped directly, 0 completed implicitly.
    let out = env.ok(&["state", "skip", &b, "5", "--reason", "kickstart done by the image factory"]);
    assert_eq!(out.trim(), "skipped 5 (kickstart) of build skip-2; next: 10 (green-image)");
    env.ok(&["state", "skip", &b, "10", "--reason", "no green image here"]);
    assert_eq!(
        events(&env, &b),
        [
            ev("completed", 0, IMPLICIT_5),
            ev("skipped", 5, "kickstart done by the image factory"),
            ev("skipped", 10, "no green image here")
        ]
    );
    let json = env.json(&["state", "skip", &b, "15", "--reason", "x"]);
    assert_eq!(
        (json["state"].as_u64(), json["state_name"].as_str()),
        (Some(20), Some("cloud-setup")),
        "{json}"
    );

    env.fails_unchanged(&b, &["state", "skip", &b, "20"], 2);
    env.fails_unchanged(&b, &["state", "skip", &b, "20", "--reason", "  "], 2);
    env.fails_unchanged(&b, &["state", "skip", &b, "30", "--reason", "x"], 4);
    env.fails_unchanged(&b, &["state", "skip", &b, "15", "--reason", "x"], 4);
    env.ok(&["state", "start", &b, "20"]);
    let err = env.fails_unchanged(&b, &["state", "skip", &b, "20", "--reason", "x"], 4);
    assert!(err.contains("still running"), "{err}");
    round_trips(&env, &b);
}

/// The four milestones of a small team, and the two ends.
const FOUR_STEPS: &str = "# build, test, sign, publish
- {code: 0, name: initial}
- {code: 20, name: build, tool: packer}
- {code: 40, name: test}
- {code: 60, name: sign}
- {code: 80, name: publish}
- {code: 100, name: delivered}
";

#[test]
fn build_create_takes_a_catalog_file() {
    let env = Env::new();
    let yaml = env.path("steps.yaml");
    std::fs::write(&yaml, FOUR_STEPS).expect("write catalog");
    let b = create(&env, "cat-1", &["--catalog", yaml.to_str().expect("utf-8 path")]);
    let doc: Value = serde_json::from_str(&env.export(&b)).expect("document");
    let codes: Vec<u64> = doc["catalog"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["code"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(codes, [0, 20, 40, 60, 80, 100], "{doc}");

    // Its first milestone is 20: exec'd directly, and every step after it in turn.
    for code in ["20", "40", "60", "80", "100"] {
        let r = exec(&env, &["exec", &b, code, "--", "true"]);
        assert_eq!(r.code, 0, "exec at {code}: {r:?}");
    }
    let shown = env.show(&b);
    assert_eq!(shown["status"].as_str(), Some("completed"), "{shown}");
    assert_eq!(
        events(&env, &b)[0],
        ev("completed", 0, "completed implicitly: the first tracked milestone was 20")
    );
    let err = env.fails(
        &["state", "start", &create(&env, "cat-2", &["--catalog", yaml.to_str().unwrap_or("")]), "25"],
        4,
    );
    assert!(err.contains("not in the catalog") && err.contains("0, 20, 40, 60, 80, 100"), "{err}");
    round_trips(&env, &b);

    // JSON, and the insert form.
    let json = env.path("steps.json");
    std::fs::write(&json, r#"[{"code": 0, "name": "initial"}, {"code": 50, "name": "bake"}, {"code": 100, "name": "delivered"}]"#)
        .expect("write catalog");
    let b = create(&env, "cat-3", &["--catalog", json.to_str().expect("utf-8 path")]);
    let out = env.ok(&["state", "complete", &b, "50"]);
    assert!(out.contains("completed 50 (bake)") && out.contains("next: 100 (delivered)"), "{out}");
    let insert = env.path("insert.yaml");
    std::fs::write(&insert, "insert:\n  - {code: 12, name: hardening}\n").expect("write catalog");
    let b = create(&env, "cat-4", &["--catalog", insert.to_str().expect("utf-8 path")]);
    env.advance_to(&b, 10);
    let out = env.ok(&["state", "complete", &b, "10"]);
    assert!(out.contains("next: 12 (hardening)"), "{out}");

    // A bad file is refused where it is wrong, and no build is created.
    let bad = env.path("bad.yaml");
    std::fs::write(
        &bad,
        "- {code: 0, name: initial}\n- {code: 50, name: Bake}\n- {code: 100, name: delivered}\n",
    )
    .expect("write catalog");
    let numbers = || {
        let list = env.json(&["build", "list"]);
        list.as_array()
            .map(|l| l.iter().map(|b| b["number"].to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let before = numbers();
    let bad_path = bad.to_str().expect("utf-8 path");
    let err = env.fails(
        &[
            "build",
            "create",
            "--platform",
            "aws-commercial",
            "--os",
            "rhel-9.6",
            "--image",
            "base",
            "--catalog",
            bad_path,
        ],
        2,
    );
    assert!(err.starts_with(&format!("error: {bad_path}:2:")) && err.contains("`Bake`"), "{err}");
    let missing = env.path("nope.yaml");
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
            "--catalog",
            missing.to_str().expect("utf-8 path"),
        ],
        2,
    );
    assert_eq!(numbers(), before, "a refused create made a build");
}

/// The commands a hint names between backquotes, as argument lists without `buildstate`.
fn hinted_commands(stderr: &str) -> Vec<Vec<String>> {
    let hint = stderr.lines().find_map(|l| l.strip_prefix("hint: ")).unwrap_or_default();
    hint.split('`').skip(1).step_by(2).map(|c| c.split(' ').skip(1).map(str::to_owned).collect()).collect()
}

#[test]
fn missing_catalog_names_say_which_command_adds_them() {
    let env = Env::new();
    env.ok(&["init"]);
    let args = ["build", "create", "--platform", "azure", "--os", "rhel-9.6", "--image", "base"];
    let r = env.run(&args);
    let err = expect_error(&r, 3, "create on an empty catalog");
    assert!(
        err.contains("platform `azure` (known: none yet), os `rhel-9.6` (known: none yet) and image-type `base` (known: none yet) are not in the catalog of"),
        "{err}"
    );
    let hint = r.stderr.lines().nth(1).unwrap_or_default();
    assert_eq!(
        hint,
        "hint: add them with `buildstate platform add azure --provider azure --region eastus`, \
         `buildstate os add rhel-9.6 --family rhel --major 9 --minor 6` and `buildstate image-type add base`, \
         or pass --add-missing to add these well-known names"
    );
    // The hint's commands, run as they are, make the create work.
    for command in hinted_commands(&r.stderr) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        env.ok(&args);
    }
    assert!(env.ok(&args).starts_with("rhel-9.6-base-azure-"));

    // One missing, unknown: its command has placeholders for what it cannot know.
    let r = env.run(&["build", "create", "--platform", "vmware", "--os", "rhel-9.6", "--image", "base"]);
    let err = expect_error(&r, 3, "an unknown platform");
    assert!(err.contains("platform `vmware` (known: azure) is not in the catalog of"), "{err}");
    assert!(
        r.stderr.contains("hint: add it with `buildstate platform add vmware --provider PROVIDER`\n"),
        "{}",
        r.stderr
    );
    let r = env.run(&["build", "create", "--platform", "azure", "--os", "rhel-9.7", "--image", "base"]);
    expect_error(&r, 3, "an unknown OS");
    assert!(
        r.stderr.contains("`buildstate os add rhel-9.7 --family rhel --major 9 --minor 7`"),
        "{}",
        r.stderr
    );
}

#[test]
fn add_missing_adds_well_known_names_and_refuses_others() {
    let env = Env::new();
    let b = env.ok(&[
        "build",
        "create",
        "--platform",
        "aws-govcloud",
        "--os",
        "sles-15.7",
        "--image",
        "hana",
        "--add-missing",
    ]);
    assert!(b.starts_with("sles-15.7-hana-aws-govcloud-"), "only the number on stdout: {b:?}");
    let platform = env.json(&["platform", "show", "aws-govcloud"]);
    assert_eq!(
        (platform["provider"].as_str(), platform["region"].as_str()),
        (Some("aws"), Some("us-gov-east-1"))
    );
    assert_eq!(platform["display_name"].as_str(), Some("AWS GovCloud"));
    let os = env.json(&["os", "show", "sles-15.7"]);
    assert_eq!(
        (os["family"].as_str(), os["major"].as_u64(), os["minor"].as_u64()),
        (Some("sles"), Some(15), Some(7))
    );
    assert_eq!(env.json(&["image-type", "show", "hana"])["display_name"].as_str(), Some("SAP HANA"));

    // Present already: nothing to add, and nothing said about it.
    let r = env.run(&[
        "build",
        "create",
        "--platform",
        "aws-govcloud",
        "--os",
        "sles-15.7",
        "--image",
        "hana",
        "--add-missing",
    ]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");

    // A name that is not well known: refused with the hint, and the well-known ones
    // named with it are not added either (an error changes nothing).
    let r = env.run(&[
        "build",
        "create",
        "--platform",
        "azure",
        "--os",
        "alma-9",
        "--image",
        "gpu",
        "--add-missing",
    ]);
    let err = expect_error(&r, 3, "unknown names with --add-missing");
    assert!(
        err.contains("os `alma-9`") && err.contains("image-type `gpu`") && !err.contains("azure"),
        "{err}"
    );
    assert_eq!(
        r.stderr.lines().nth(1).unwrap_or_default(),
        "hint: --add-missing adds only well-known names (the sample catalog's); add them with \
         `buildstate os add alma-9 --family alma --major 9` and `buildstate image-type add gpu`"
    );
    env.fails(&["platform", "show", "azure"], 3);

    // --json: the build as data; --quiet: nothing on stderr.
    let r = env.run(&[
        "build",
        "create",
        "--platform",
        "gcp",
        "--os",
        "ubuntu-24.04",
        "--image",
        "base",
        "--add-missing",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let json: Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    assert_eq!(json["platform"].as_str(), Some("gcp"), "{json}");
    assert!(r.stderr.contains("added platform gcp (provider gcp, region us-central1)"), "{}", r.stderr);
    let r = env.run(&[
        "build",
        "create",
        "--platform",
        "openstack",
        "--os",
        "ubuntu-24.04",
        "--image",
        "base",
        "--add-missing",
        "-q",
    ]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{r:?}");
}

#[test]
fn run_says_which_names_are_missing_and_add_missing_adds_them() {
    let env = Env::new();
    env.ok(&["init"]);
    let pipeline = env.write(
        "p.yml",
        "name: first\nmatrix: {platform: [azure, gcp], os: [ubuntu-24.04], image: [base]}\nstates: {5: {run: \"true\"}}\n",
    );
    let path = pipeline.to_str().expect("utf-8 path");
    let r = env.run(&["run", path]);
    expect_error(&r, 3, "run on an empty catalog");
    assert!(
        r.stderr.contains(
            "hint: add them with `buildstate platform add azure --provider azure --region eastus`, \
             `buildstate os add ubuntu-24.04 --family ubuntu --major 24 --minor 4`, \
             `buildstate image-type add base` and `buildstate platform add gcp --provider gcp --region us-central1`, \
             or pass --add-missing"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(env.json(&["build", "list"]), Value::Array(Vec::new()), "no build was created");

    let r = env.run(&["run", path, "--add-missing", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(env.json(&["platform", "list"]).as_array().map(Vec::len), Some(2));
    let r = env.run(&["run", path, "--new", "--only", "platform=gcp", "--json"]);
    assert_eq!(r.code, 0, "the names are there now: {r:?}");
}
