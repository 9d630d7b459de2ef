//! `buildstate packer` with the real Packer (1.6.6: HCL2, the `null` builder,
//! `shell-local`, `artifice`, `manifest`), `kept list|reap` and
//! `artifact ingest-manifest`.

use std::path::Path;

use serde_json::Value;

use crate::common::{Env, Run, expect_error};

/// Fails (never skips) when Packer is missing: the suite's setup installs it.
fn need_packer() {
    let ok = std::process::Command::new("packer").arg("version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "packer is not on PATH: run scripts/setup.sh (install_packer_ansible) first");
}

fn env() -> Env {
    need_packer();
    Env::new().with_catalog()
}

/// `buildstate ARGS…` in the fixture's directory, with Packer's phone-home off.
fn bs(env: &Env, args: &[&str]) -> Run {
    env.cmd()
        .current_dir(env.dir.path())
        .env("CHECKPOINT_DISABLE", "1")
        .args(args)
        .output()
        .expect("run buildstate")
        .into()
}

/// A template of the `null` builder with these `shell-local` provisioners (inline
/// commands) and post-processor block.
fn template(env: &Env, name: &str, provisioners: &[&str], post: &str) -> String {
    let mut t = String::from(
        "variable \"buildstate_build\" {\n  type = string\n  default = \"\"\n}\n\
         source \"null\" \"x\" { communicator = \"none\" }\n\
         build {\n  sources = [\"source.null.x\"]\n",
    );
    for p in provisioners {
        t.push_str(&format!("  provisioner \"shell-local\" {{ inline = [\"{p}\"] }}\n"));
    }
    t.push_str(post);
    t.push_str("}\n");
    let file = format!("{name}.pkr.hcl");
    std::fs::write(env.path(&file), t).expect("write the template");
    file
}

fn write(env: &Env, name: &str, text: &str) -> String {
    std::fs::write(env.path(name), text).expect("write a file");
    env.path(name).display().to_string()
}

/// (kind, state) of each history event from `started`/`completed`/`skipped`/`failed`.
fn moves(env: &Env, b: &str) -> Vec<(String, u64)> {
    env.history(b)
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("started" | "completed" | "skipped" | "failed")))
        .map(|e| (e["kind"].as_str().unwrap_or("").to_owned(), e["state"].as_u64().unwrap_or(999)))
        .collect()
}

fn mv(kind: &str, state: u64) -> (String, u64) {
    (kind.to_owned(), state)
}

fn artifacts(env: &Env, b: &str) -> Vec<Value> {
    env.json(&["artifact", "list", b]).as_array().cloned().unwrap_or_default()
}

fn named<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("no artifact {name} in {list:#?}"))
}

#[test]
fn three_provisioners_mapped_to_three_milestones() {
    three_provisioners_mapped_to_three_milestones_in(env());
}

/// The same through `buildstate serve`, the CLI given only its URL and a token.
#[test]
fn three_provisioners_mapped_to_three_milestones_through_the_server() {
    need_packer();
    three_provisioners_mapped_to_three_milestones_in(Env::served().with_catalog());
}

fn three_provisioners_mapped_to_three_milestones_in(env: Env) {
    let b = env.build("pk-1");
    let t = template(&env, "three", &["echo one, two", "echo second", "echo third"], "");
    let map = write(&env, "map.yaml", "provisioners: {0: 10, 1: 15, 2: 25}\n");

    let r = bs(&env, &["packer", &b, "--map", &map, "--", "packer", "build", &t]);
    assert_eq!(r.code, 0, "{r:?}");
    // Shown as Packer shows it without -machine-readable: unescaped, no record syntax.
    assert!(r.stdout.contains("    null.x: one, two\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("PACKER_COMMA") && !r.stdout.contains(",ui,"), "{}", r.stdout);

    assert_eq!(
        moves(&env, &b),
        [
            mv("started", 0),
            mv("completed", 0),
            mv("skipped", 5),
            mv("started", 10),
            mv("completed", 10),
            mv("started", 15),
            mv("completed", 15),
            mv("skipped", 20),
            mv("started", 25),
            mv("completed", 25),
        ]
    );
    let build = env.show(&b);
    assert_eq!(build["state"].as_u64(), Some(30), "{build}");

    // The attempt log holds the raw stream.
    let log = env.history(&b).iter().rev().find_map(|e| e["log"].as_str().map(str::to_owned)).expect("a log");
    let raw = std::fs::read_to_string(&log).expect("read the log");
    assert!(raw.contains(",ui,message,    null.x: one%!(PACKER_COMMA) two"), "{raw}");

    // Run again with the map, the build past every milestone of it: refused, nothing run.
    let before = env.history(&b).len();
    let r = bs(&env, &["packer", &b, "--map", &map, "--", "packer", "build", "-timestamp-ui", &t]);
    let err = expect_error(&r, 4, "a build past its map");
    assert!(err.contains("is at 30, past the milestones this map covers (10–25)"), "{err}");
    assert!(r.stderr.contains("hint: `buildstate rewind"), "{r:?}");
    assert_eq!(env.history(&b).len(), before);
}

/// `-timestamp-ui` is dropped, so the map still fires; a `shell-local` post-processor
/// counts as no provisioner and its failure names it as a post-processor.
#[test]
fn timestamps_and_shell_local_post_processors_do_not_confuse_the_map() {
    let env = env();
    let b = env.build("pk-20");
    let post = "  post-processor \"shell-local\" { inline = [\"echo pp; exit 3\"] }\n";
    let t = template(&env, "ppfail", &["echo one"], post);
    let map = write(&env, "map2.yaml", "provisioners: {0: 10, 1: 15}\n");
    let r = bs(&env, &["packer", &b, "--map", &map, "--", "packer", "build", "-timestamp-ui", &t]);
    assert_eq!(r.code, 1, "{r:?}");
    let f = &env.failures(&b)[0];
    assert_eq!(f["component"], "shell-local (post-processor)", "{f:#}");
    assert_eq!(f["state"].as_u64(), Some(10), "the post-processor is no provisioner 1: {f:#}");
    assert!(
        f["details"]["command"].as_str().is_some_and(|c| c.starts_with("packer build -machine-readable ")),
        "{f:#}"
    );
}

/// Packer refusing its own command line: the failure says what a person saw, never a
/// raw machine-readable record.
#[test]
fn a_failure_message_is_rendered_text() {
    let env = env();
    let b = env.build("pk-23");
    let t = template(&env, "usage", &["echo one"], "");
    let r = bs(&env, &["packer", &b, "--", "packer", "build", "-bogus", &t]);
    assert_eq!(r.code, 1, "{r:?}");
    let f = &env.failures(&b)[0];
    let message = f["message"].as_str().unwrap_or("");
    // Packer 1.6.6 sometimes exits before writing its `ui,error` line (about one run in
    // eight, fresh-clone CI): then the last line a person saw is the message.
    assert!(
        message.contains("flag provided but not defined: -bogus")
            || message.starts_with("packer exited with 1: -var-file=path"),
        "{f:#}"
    );
    assert!(!message.contains(",ui,") && !message.contains("PACKER_COMMA"), "{f:#}");
}

/// `-only=typo.x` makes Packer build nothing and exit 0: a failure, not a completed milestone.
#[test]
fn a_run_that_builds_nothing_fails() {
    let env = env();
    let b = env.build("pk-21");
    let t = template(&env, "nothing", &["echo one"], "");
    let r = bs(&env, &["packer", &b, "--", "packer", "build", "-only=typo.x", &t]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Packer ran no build"), "{r:?}");
    let f = &env.failures(&b)[0];
    assert!(f["message"].as_str().is_some_and(|m| m.contains("check -only/-except")), "{f:#}");
    assert!(!moves(&env, &b).contains(&mv("completed", 0)), "{:?}", moves(&env, &b));
}

/// Files outside the manifest's directory are refused unless allowed; other
/// non-files skipped; two ids in one region get distinct names; URIs are absolute.
#[test]
fn manifest_files_are_confined_and_names_unique() {
    let env = env();
    let b = env.build("pk-22");
    std::fs::create_dir_all(env.path("m/out/dir")).expect("mkdir");
    std::fs::write(env.path("m/out/disk.qcow2"), "disk\n").expect("write");
    std::fs::write(env.path("secret"), "s3cret\n").expect("write");
    let manifest = |files: &str| {
        format!(
            r#"{{"builds": [{{"name": "u", "builder_type": "amazon-ebs", "files": [{files}],
                "artifact_id": "us-east-1:ami-1,us-east-1:ami-2", "packer_run_uuid": "r"}}],
                "last_run_uuid": "r"}}"#
        )
    };
    write(&env, "m/escape.json", &manifest(r#"{"name": "../secret"}"#));
    let before = env.export(&b);
    let r: Run = env
        .cmd()
        .current_dir(env.dir.path())
        .args(["artifact", "ingest-manifest", &b, "m/escape.json"])
        .output()
        .expect("run")
        .into();
    let err = expect_error(&r, 2, "a file outside the manifest's directory");
    assert!(err.contains("outside") && r.stderr.contains("--allow-outside"), "{r:?}");
    assert_eq!(before, env.export(&b));

    write(
        &env,
        "m/ok.json",
        &manifest(r#"{"name": "out/disk.qcow2"}, {"name": "out/dir"}, {"name": "gone"}"#),
    );
    let r: Run = env
        .cmd()
        .current_dir(env.dir.path())
        .args(["artifact", "ingest-manifest", &b, "m/ok.json"])
        .output()
        .expect("run")
        .into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("not a regular file") && r.stderr.contains("not here"), "{r:?}");
    let list = artifacts(&env, &b);
    assert_eq!(list.len(), 3, "{list:#?}");
    assert_eq!(named(&list, "amazon-ebs.u.aws.us-east-1")["uri"], "ami-1");
    assert_eq!(named(&list, "amazon-ebs.u.aws.us-east-1-2")["uri"], "ami-2");
    let disk = named(&list, "amazon-ebs.u.file.out/disk.qcow2");
    let uri = disk["uri"].as_str().unwrap_or("");
    assert!(uri.starts_with("file:///") && uri.ends_with("/m/out/disk.qcow2"), "{disk:#}");

    write(&env, "m/escape2.json", &manifest(r#"{"name": "../secret"}"#));
    let r = bs(&env, &["artifact", "ingest-manifest", &b, "m/escape2.json", "--allow-outside"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(artifacts(&env, &b).iter().any(|a| a["name"] == "amazon-ebs.u.file.../secret"));
}

#[test]
fn a_failing_provisioner_is_named_and_a_rerun_resumes_there() {
    let env = env();
    let b = env.build("pk-2");
    let t = template(&env, "fails", &["echo ok", "echo boom >&2; exit 3", "echo never"], "");
    let map = write(&env, "map.json", r#"{"provisioners": {"0": 10, "1": 15, "2": 20}}"#);

    let r = bs(&env, &["packer", &b, "--map", &map, "--", "packer", "build", &t]);
    assert_eq!(r.code, 1, "Packer's own exit code: {r:?}");
    assert!(r.stderr.contains("==> null.x: boom"), "errors go to stderr: {r:?}");
    let build = env.show(&b);
    assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(15), Some("failed")), "{build}");
    let failures = env.failures(&b);
    let f = &failures[0];
    assert_eq!(f["type"], "packer", "{f:#}");
    assert_eq!(f["component"], "shell-local (provisioner 1)", "{f:#}");
    assert!(f["message"].as_str().unwrap_or("").contains("non-zero exit status: 3"), "{f:#}");
    assert_eq!(f["details"]["error_lines"][0], "boom", "{f:#}");
    assert_eq!(f["details"]["template"], t.as_str(), "{f:#}");
    assert!(f["details"]["log_tail"].as_str().unwrap_or("").contains("==> null.x: boom"), "{f:#}");

    // Fixed and run again: the build resumes at 15; provisioner 0 (at 10) changes nothing.
    template(&env, "fails", &["echo ok", "echo fixed", "echo now"], "");
    let before = moves(&env, &b).len();
    let r = bs(&env, &["packer", &b, "--map", &map, "--", "packer", "build", &t]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = moves(&env, &b);
    assert_eq!(
        after[before..],
        [mv("started", 15), mv("completed", 15), mv("started", 20), mv("completed", 20)]
    );
}

#[test]
fn keep_on_failure_records_the_vm_and_reap_cleans_it_up_once() {
    let env = env();
    let b = env.build("pk-3");
    let t = template(&env, "keep", &["exit 4"], "");
    let marks = env.path("reaped");
    let cleanup = format!("echo once >> {}-{{id}}", marks.display());

    // The null builder has no default clean-up: refused before Packer runs.
    let before = env.export(&b);
    let r = bs(&env, &["packer", &b, "--keep-on-failure", "1s", "--", "packer", "build", &t]);
    let err = expect_error(&r, 2, "keep without cleanup");
    assert!(err.contains("--cleanup") && err.contains("null"), "{err}");
    assert_eq!(before, env.export(&b));

    let r = bs(
        &env,
        &["packer", &b, "--keep-on-failure", "1s", "--cleanup", &cleanup, "--", "packer", "build", &t],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let failures = env.failures(&b);
    assert!(
        failures[0]["details"]["command"].as_str().unwrap_or("").contains("-on-error=abort"),
        "{:#}",
        failures[0]
    );
    let kept = env.json(&["kept", "list"]);
    let kept = kept.as_array().expect("a list");
    assert_eq!(kept.len(), 1, "{kept:#?}");
    assert_eq!(
        (kept[0]["build"].as_str(), kept[0]["cloud"].as_str(), kept[0]["id"].as_str()),
        (Some("pk-3"), Some("null"), Some("null.x"))
    );

    std::thread::sleep(std::time::Duration::from_millis(1200));
    let r = bs(&env, &["kept", "reap"]);
    assert_eq!(r.code, 0, "{r:?}");
    let file = format!("{}-null.x", marks.display());
    assert_eq!(std::fs::read_to_string(&file).expect("the clean-up ran"), "once\n");
    // Reaped: never run again, and recorded on the build.
    let r = bs(&env, &["kept", "reap"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("still there"), "once\n");
    assert!(env.json(&["kept", "list"]).as_array().is_some_and(Vec::is_empty));
    let all = env.json(&["kept", "list", "--all"]);
    assert_eq!(
        (all[0]["status"].as_str(), all[0]["reap_exit"].as_i64()),
        (Some("reaped"), Some(0)),
        "{all:#}"
    );
    let meta = env.json(&["meta", "list", &b]);
    assert!(meta["kept.1"].as_str().unwrap_or("").contains("reaped_at"), "{meta:#}");

    // A failing clean-up: exit 1, recorded, tried again next time.
    let b = env.build("pk-4");
    bs(&env, &["packer", &b, "--keep-on-failure", "1s", "--cleanup", "exit 9", "--", "packer", "build", &t]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let r = bs(&env, &["kept", "reap"]);
    assert_eq!(r.code, 1, "{r:?}");
    let list = env.json(&["kept", "list"]);
    assert_eq!(
        (list[0]["status"].as_str(), list[0]["reap_exit"].as_i64()),
        (Some("reap failed"), Some(9)),
        "{list:#}"
    );
}

const HAND_MANIFEST: &str = r#"{
  "builds": [
    {"name": "ubuntu", "builder_type": "amazon-ebs", "build_time": 1, "files": null,
     "artifact_id": "us-east-1:ami-old", "packer_run_uuid": "run-1",
     "custom_data": {"buildstate_build": "pk-5"}},
    {"name": "ubuntu", "builder_type": "amazon-ebs", "build_time": 2,
     "files": [{"name": "out/disk.qcow2", "size": 5}],
     "artifact_id": "us-east-1:ami-1,us-west-2:ami-2", "packer_run_uuid": "run-2",
     "custom_data": {"buildstate_build": "pk-5"}}
  ],
  "last_run_uuid": "run-2"
}"#;

#[test]
fn manifests_become_one_artifact_per_region_and_file() {
    let env = env();
    let b = env.build("pk-5");
    std::fs::create_dir_all(env.path("out")).expect("mkdir");
    std::fs::write(env.path("out/disk.qcow2"), "disk\n").expect("write the disk");
    let m = write(&env, "hand.json", HAND_MANIFEST);

    for _ in 0..2 {
        let r = bs(&env, &["artifact", "ingest-manifest", &b, &m]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let list = artifacts(&env, &b);
    // Only the current run, one image per region, the file hashed; twice is once.
    assert_eq!(list.len(), 3, "{list:#?}");
    let east = named(&list, "amazon-ebs.ubuntu.aws.us-east-1");
    assert_eq!(
        (east["kind"].as_str(), east["uri"].as_str(), east["region"].as_str()),
        (Some("image"), Some("ami-1"), Some("us-east-1"))
    );
    assert_eq!(east["cloud"], "aws", "the cloud is its own field, not only part of the name: {east:#}");
    let west = named(&list, "amazon-ebs.ubuntu.aws.us-west-2");
    assert_eq!((west["uri"].as_str(), west["cloud"].as_str()), (Some("ami-2"), Some("aws")), "{west:#}");
    let disk = named(&list, "amazon-ebs.ubuntu.file.out/disk.qcow2");
    assert_eq!((disk["kind"].as_str(), disk["size_bytes"].as_u64()), (Some("disk"), Some(5)));
    assert!(disk.get("cloud").is_none(), "a file is on this machine, in no cloud: {disk:#}");
    assert_eq!(disk["sha256"].as_str().map(str::len), Some(64), "{disk:#}");

    // A real run: the manifest post-processor's entry of this run, traced to the build.
    let post = "  post-processors {\n    post-processor \"artifice\" { files = [\"disk.img\"] }\n    \
                post-processor \"manifest\" {\n      output = \"packer-manifest.json\"\n      \
                custom_data = { buildstate_build = var.buildstate_build }\n    }\n  }\n";
    let t = template(&env, "manifest", &["printf hello > disk.img"], post);
    let b = env.build("pk-6");
    for _ in 0..2 {
        let r = bs(&env, &["packer", &b, "--", "packer", "build", &t]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("packer-manifest.json")).expect("written"))
            .expect("json");
    assert_eq!(manifest["builds"].as_array().map(Vec::len), Some(2), "{manifest:#}");
    assert_eq!(manifest["builds"][1]["custom_data"]["buildstate_build"], "pk-6", "{manifest:#}");
    let r = bs(&env, &["packer", &b, "--", "packer", "build", &t]);
    assert_eq!(r.code, 0, "{r:?}");
    let list = artifacts(&env, &b);
    assert_eq!(list.len(), 1, "{list:#?}");
    let img = named(&list, "null.x.file.disk.img");
    assert_eq!((img["kind"].as_str(), img["size_bytes"].as_u64()), (Some("disk"), Some(5)), "{img:#}");
    assert!(img.get("cloud").is_none(), "{img:#}");
    assert_eq!(img["sha256"], "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "{img:#}");

    // The manifest names pk-6: another build refuses it unless forced.
    let other = env.build("pk-7");
    let m = env.path("packer-manifest.json").display().to_string();
    let before = env.export(&other);
    let r = bs(&env, &["artifact", "ingest-manifest", &other, &m]);
    let err = expect_error(&r, 2, "another build's manifest");
    assert!(err.contains("pk-6") && err.contains("pk-7"), "{err}");
    assert_eq!(before, env.export(&other));
    let r = bs(&env, &["artifact", "ingest-manifest", &other, &m, "--force"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn bad_inputs_are_refused_before_packer_runs() {
    let env = env();
    let b = env.build("pk-8");
    let ran = env.path("ran");
    let t = template(&env, "marker", &[&format!("touch {}", ran.display())], "");
    let packer = |extra: &[&str]| {
        let mut args = vec!["packer", b.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "packer", "build", t.as_str()]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let check = |args: Vec<String>, code: i32, what: &str| -> String {
        let before = env.export(&b);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = bs(&env, &args);
        let err = expect_error(&r, code, what);
        assert_eq!(before, env.export(&b), "{what} changed the build");
        assert!(!Path::new(&ran).exists(), "{what}: packer ran");
        err
    };

    let r = bs(&env, &["packer", "no-such-build", "--", "packer", "build", &t]);
    expect_error(&r, 3, "unknown build");

    let outside = write(&env, "outside.yaml", "provisioners: {0: 7}\n");
    let err = check(packer(&["--map", &outside]), 2, "a code outside the catalog");
    assert!(err.contains("milestone 7") && err.contains("pk-8"), "{err}");

    let bad = write(&env, "bad.yaml", "provisioners: [oops\n");
    let err = check(packer(&["--map", &bad]), 2, "a malformed map");
    assert!(err.contains("bad.yaml"), "{err}");

    let env_map = packer(&[]);
    let before = env.export(&b);
    let r: Run = env
        .cmd()
        .current_dir(env.dir.path())
        .env("BUILDSTATE_PACKER_MAP", r#"{"provisioners": {"0": 3}}"#)
        .args(&env_map)
        .output()
        .expect("run")
        .into();
    expect_error(&r, 2, "a map from the environment outside the catalog");
    assert_eq!(before, env.export(&b));

    let r = bs(&env, &["packer", &b, "--", "packer", "validate", &t]);
    expect_error(&r, 2, "not packer build");
    for not_packer in [&["echo", "build", "t"][..], &["rm", "build", "x"]] {
        let mut args = vec!["packer", b.as_str(), "--"];
        args.extend_from_slice(not_packer);
        let before = env.export(&b);
        let err = expect_error(&bs(&env, &args), 2, "a program that is not packer");
        assert!(err.contains("is not packer"), "{err}");
        assert_eq!(before, env.export(&b));
    }
    let before = env.export(&b);
    let err =
        expect_error(&bs(&env, &["packer", &b, "--", "/nonexistent/packer", "build", &t]), 127, "no packer");
    assert!(err.contains("/nonexistent/packer"), "{err}");
    assert_eq!(before, env.export(&b), "a packer that cannot start recorded an attempt");

    let err = check(packer(&["--keep-on-failure", "1h", "--cleanup", " "]), 2, "a blank --cleanup");
    assert!(err.contains("blank"), "{err}");
    let err =
        check(packer(&["--keep-on-failure", "1h", "--cleanup", "rm {idd} {region"]), 2, "bad placeholders");
    assert!(err.contains("never closed"), "{err}");
    let err =
        check(packer(&["--keep-on-failure", "1h", "--cleanup", "rm {idd}"]), 2, "an unknown placeholder");
    assert!(err.contains("{idd}"), "{err}");
    let backwards = write(&env, "backwards.yaml", "provisioners: {0: 15, 1: 10}\n");
    let err = check(packer(&["--map", &backwards]), 2, "a map going backwards");
    assert!(err.contains("must ascend"), "{err}");

    let cancelled = env.build("pk-8c");
    env.ok(&["build", "cancel", &cancelled, "--reason", "test"]);
    let r = bs(&env, &["packer", &cancelled, "--", "packer", "build", &t]);
    let err = expect_error(&r, 4, "a cancelled build");
    assert!(err.contains("cancelled"), "{err}");
    assert!(!Path::new(&ran).exists(), "packer ran for a cancelled build");

    let junk = write(&env, "junk.json", "{\"builds\": 3");
    let err =
        check(vec!["artifact".into(), "ingest-manifest".into(), b.clone(), junk], 7, "a malformed manifest");
    assert!(err.contains("junk.json"), "{err}");
    let huge = env.path("huge.json");
    std::fs::write(&huge, vec![b' '; 17 * 1024 * 1024]).expect("write");
    let err = check(
        vec!["artifact".into(), "ingest-manifest".into(), b.clone(), huge.display().to_string()],
        7,
        "a huge manifest",
    );
    assert!(err.contains("at most") && err.contains(&(17 * 1024 * 1024).to_string()), "{err}");
    let err = check(packer(&["--map", &bad]), 2, "a malformed map");
    assert!(!err.contains("<input>"), "{err}");
}

/// API throttling in a failing provisioner's output is transient by the milestone's
/// retry policy (`[retry.RANGE] transient.output_patterns`), like any other step's.
#[test]
fn throttling_is_transient_by_the_retry_policy() {
    let env = env();
    let config = write(
        &env,
        "bs.toml",
        "[retry.0-100]\nmax_attempts = 3\ntransient = { output_patterns = [\"RequestLimitExceeded\"] }\n",
    );
    let b = env.build("pk-9");
    let t = template(&env, "throttled", &["echo 'RequestLimitExceeded: Rate exceeded' >&2; exit 1"], "");
    let r: Run = env
        .cmd()
        .current_dir(env.dir.path())
        .env("CHECKPOINT_DISABLE", "1")
        .env("BUILDSTATE_CONFIG", &config)
        .args(["packer", &b, "--", "packer", "build", &t])
        .output()
        .expect("run")
        .into();
    assert_eq!(r.code, 1, "{r:?}");
    let f = &env.failures(&b)[0];
    assert_eq!((f["type"].as_str(), f["class"].as_str()), (Some("packer"), Some("transient")), "{f:#}");
    let shown = env.json(&["build", "show", &b]);
    assert_eq!(shown["build"]["needs_intervention"], false, "a transient failure is retried: {shown}");
}

/// A post-processor that fails is the component named, with Packer's error on one line.
#[test]
fn a_failing_post_processor_is_named() {
    let env = env();
    let b = env.build("pk-10");
    let post = "  post-processor \"manifest\" { output = \"/nonexistent/dir/m.json\" }\n";
    let t = template(&env, "post", &["echo ok"], post);
    let r = bs(&env, &["packer", &b, "--", "packer", "build", &t]);
    assert_eq!(r.code, 1, "{r:?}");
    let f = &env.failures(&b)[0];
    assert_eq!(f["component"], "manifest (post-processor)", "{f:#}");
    let message = f["message"].as_str().unwrap_or("");
    assert!(message.contains("Unable to write /nonexistent/dir/m.json") && !message.contains('\n'), "{f:#}");
    assert!(env.json(&["artifact", "list", &b]).as_array().is_some_and(Vec::is_empty));
}

/// A lease broken under a running `buildstate packer` stops Packer's whole process group
/// (its provisioner's grandchild too), records nothing more, and exits 5.
#[test]
fn a_lost_lease_stops_packer() {
    use crate::common::{Runner, eventually, process_alive, read};
    use std::time::Duration;

    let env = env();
    let b = env.build("pk-11");
    let pid = env.path("sleep.pid");
    let hang = format!("sleep 301 & echo $! > {0}.tmp; mv {0}.tmp {0}; wait", pid.display());
    let t = template(&env, "hang", &[&hang], "");
    let (stdout, stderr) = (env.path("hang.stdout"), env.path("hang.stderr"));
    let child = env
        .std_cmd()
        .current_dir(env.dir.path())
        .env("CHECKPOINT_DISABLE", "1")
        .args(["packer", &b, "--grace", "2s", "--", "packer", "build", &t])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("create"))
        .stderr(std::fs::File::create(&stderr).expect("create"))
        .spawn()
        .expect("start buildstate");
    let mut run = Runner::new(child, "hang", stdout, stderr);
    assert!(
        eventually(Duration::from_secs(30), || pid.exists()),
        "the provisioner started: {}",
        run.output()
    );
    let sleeper: u32 = read(&pid).trim().parse().expect("a pid");
    assert!(process_alive(sleeper, "sleep 301"));

    env.ok(&["lease", "break", &b]);
    assert!(
        eventually(Duration::from_secs(15), || !process_alive(sleeper, "sleep 301")),
        "Packer's process group was stopped: {}",
        run.output()
    );
    assert_eq!(run.wait(Duration::from_secs(30)), 5, "{}", run.output());
    assert!(read(&run.stderr).contains("lease on build pk-11 was lost"), "{}", run.output());
    let history = env.history(&b);
    let last = history.last().expect("history");
    assert_eq!((last["kind"].as_str(), last["state"].as_u64()), (Some("started"), Some(0)), "{history:#?}");
}

/// Two `kept reap` at once (overlapping cron runs) run one clean-up once.
#[test]
fn overlapping_reaps_run_a_clean_up_once() {
    let env = env();
    let b = env.build("pk-12");
    let t = template(&env, "keep2", &["exit 4"], "");
    let marks = env.path("reaped-twice");
    let cleanup = format!("sleep 1; echo once >> {}", marks.display());
    let r = bs(
        &env,
        &["packer", &b, "--keep-on-failure", "1s", "--cleanup", &cleanup, "--", "packer", "build", &t],
    );
    assert_eq!(r.code, 1, "{r:?}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let spawn = || env.std_cmd().args(["kept", "reap"]).output();
    let (one, two) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().expect("reap 1").expect("run"), b.join().expect("reap 2").expect("run"))
    });
    assert!(one.status.success() && two.status.success(), "{one:?} {two:?}");
    assert_eq!(std::fs::read_to_string(&marks).expect("the clean-up ran"), "once\n", "{one:?} {two:?}");
    let all = env.json(&["kept", "list", "--all"]);
    assert_eq!(all[0]["status"], "reaped", "{all:#}");
}

/// Keeps a VM of a failing run on a new build whose clean-up is `cleanup`; returns
/// when it has expired.
fn kept_with(env: &Env, build: &str, cleanup: &str) {
    let b = env.build(build);
    let t = template(env, &format!("keep-{build}"), &["exit 4"], "");
    let r = bs(
        env,
        &["packer", &b, "--keep-on-failure", "1s", "--cleanup", cleanup, "--", "packer", "build", &t],
    );
    assert_eq!(r.code, 1, "{r:?}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
}

fn alive(pid_file: &Path) -> bool {
    let pid = std::fs::read_to_string(pid_file).expect("the clean-up wrote its child's pid");
    std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A second reap with a shorter `--timeout` honours the first one's claim (its own
/// deadline is recorded), so the clean-up still runs once.
#[test]
fn a_shorter_timeout_does_not_break_another_reaps_claim() {
    let env = env();
    let marks = env.path("once");
    kept_with(&env, "pk-30", &format!("sleep 3; echo once >> {}", marks.display()));
    let first = env.std_cmd().args(["kept", "reap"]).spawn().expect("reap 1");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let second = env.std_cmd().args(["kept", "reap", "--timeout", "1s"]).output().expect("reap 2");
    let first = first.wait_with_output().expect("reap 1 ends");
    assert!(first.status.success() && second.status.success(), "{first:?} {second:?}");
    assert!(String::from_utf8_lossy(&second.stdout).contains("another `kept reap`"), "{second:?}");
    assert_eq!(std::fs::read_to_string(&marks).expect("ran"), "once\n");
}

/// A clean-up runs in its own process group: its timeout and a SIGTERM of `kept reap`
/// kill what it started too; a stopped one is left for the next reap, exit 143.
#[test]
fn clean_ups_die_with_their_timeout_and_with_the_reaper() {
    let env = env();
    let pid = env.path("child.pid");
    kept_with(&env, "pk-31", &format!("sleep 60 & echo $! > {}; wait", pid.display()));
    let r = env.std_cmd().args(["kept", "reap", "--timeout", "1s"]).output().expect("reap");
    assert!(!r.status.success(), "{r:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!alive(&pid), "the clean-up's child outlived its timeout");
    assert_eq!(env.json(&["kept", "list"])[0]["reap_exit"], 124);

    let reaper = env.std_cmd().args(["kept", "reap"]).spawn().expect("reap");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = std::process::Command::new("kill").arg(reaper.id().to_string()).status().expect("kill");
    assert!(status.success());
    let out = reaper.wait_with_output().expect("reap ends");
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!alive(&pid), "the clean-up's child outlived the reaper");
    let list = env.json(&["kept", "list"]);
    assert_ne!(list[0]["status"], "reaped", "{list:#}");
    assert!(list[0].get("reaping_since").is_none_or(Value::is_null), "the claim is dropped: {list:#}");
}

/// A pipeline's `packer:` step: one Packer run moves the build through the mapped
/// milestones, a provisioner's failure is recorded by the runner at the milestone it
/// mapped to (with Packer's detail), and the next `run` resumes by running the step again.
#[test]
fn a_pipeline_packer_step_moves_through_its_map_and_resumes_at_the_failed_milestone() {
    let env = env();
    let t = template(
        &env,
        "steps",
        &["echo base", "if [ -e fail-15 ]; then echo broken >&2; exit 3; fi", "echo done"],
        "",
    );
    std::fs::write(env.path("fail-15"), "").expect("a marker");
    let pipeline = format!(
        "name: pk\nmatrix: {{platform: [aws-commercial], os: [rhel-9.6], image: [base]}}\n\
         defaults: {{retry: {{max_attempts: 1}}}}\n\
         states:\n  5:\n    packer:\n      args: [{t}]\n      map: {{provisioners: {{0: 10, 1: 15, 2: 20}}}}\n\
         \x20 30: {{run: echo thirty}}\n"
    );
    let file = write(&env, "pk.yml", &pipeline);
    let r = bs(&env, &["run", &file]);
    assert_eq!(r.code, 8, "the build failed: {r:?}");
    let builds = env.json(&["build", "list"]);
    let b = builds[0]["number"].as_str().expect("a build").to_owned();
    let build = env.show(&b);
    assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(15), Some("failed")), "{build}");
    let f = &env.failures(&b)[0];
    assert_eq!(f["type"], "packer", "{f:#}");
    assert_eq!(f["component"], "shell-local (provisioner 1)", "{f:#}");
    assert!(f["message"].as_str().unwrap_or("").contains("non-zero exit status: 3"), "{f:#}");
    assert!(
        f["details"]["command"].as_str().unwrap_or("").contains("packer"),
        "the runner's record too: {f:#}"
    );
    assert_eq!(
        moves(&env, &b),
        [
            mv("skipped", 0),
            mv("started", 5),
            mv("completed", 5),
            mv("started", 10),
            mv("completed", 10),
            mv("started", 15),
            mv("failed", 15),
        ]
    );

    // Fixed: the next run re-runs the Packer step for milestone 15 (10 is not redone),
    // then 25 is covered but not reached (skipped), 30 runs, and the build is delivered.
    std::fs::remove_file(env.path("fail-15")).expect("remove the marker");
    let before = moves(&env, &b).len();
    let r = bs(&env, &["run", &file]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = moves(&env, &b);
    assert_eq!(
        after[before..before + 6],
        [
            mv("started", 15),
            mv("completed", 15),
            mv("started", 20),
            mv("completed", 20),
            mv("skipped", 25),
            mv("started", 30),
        ],
        "{after:?}"
    );
    assert_eq!(env.show(&b)["status"], "completed");
    let skipped = env.history(&b).into_iter().find(|e| e["kind"] == "skipped" && e["state"] == 25);
    let why = skipped.map(|e| e["message"].as_str().unwrap_or("").to_owned()).unwrap_or_default();
    assert_eq!(why, "not reached by the packer step at 5");
}

/// From a hostile review: builds run at once in one directory wrote one
/// `packer-manifest.json`, so some read another build's (or a half-written one) and
/// their artifacts were silently not recorded. A template that writes to
/// BUILDSTATE_PACKER_MANIFEST gets a file of the run's own; a manifest that cannot be
/// recorded fails the milestone instead of completing it without its artifacts.
#[test]
fn builds_at_once_in_one_directory_each_record_their_own_artifacts() {
    let env = env();
    let post = "  post-processors {\n    post-processor \"artifice\" { files = [\"out-${var.buildstate_build}.img\"] }\n    \
                post-processor \"manifest\" {\n      output = var.manifest == \"\" ? \"packer-manifest.json\" : var.manifest\n      \
                custom_data = { buildstate_build = var.buildstate_build }\n    }\n  }\n";
    let t = template(&env, "own", &["sleep 0.3", "printf x > out-${var.buildstate_build}.img"], post);
    let t = format!(
        "variable \"manifest\" {{\n  type = string\n  default = env(\"BUILDSTATE_PACKER_MANIFEST\")\n}}\n{}",
        std::fs::read_to_string(env.path(&t)).expect("read")
    );
    std::fs::write(env.path("own.pkr.hcl"), t).expect("write");
    let builds: Vec<String> = (1..=4).map(|i| env.build(&format!("pk-par-{i}"))).collect();
    let runs: Vec<_> = builds
        .iter()
        .map(|b| {
            let mut c = env.std_cmd();
            c.current_dir(env.dir.path())
                .env("CHECKPOINT_DISABLE", "1")
                .args(["packer", b, "--", "packer", "build", "own.pkr.hcl"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().expect("start buildstate packer")
        })
        .collect();
    for (b, child) in builds.iter().zip(runs) {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{b}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for b in &builds {
        let list = artifacts(&env, b);
        assert_eq!(list.len(), 1, "{b}: its own file, from its own manifest: {list:#?}");
        assert!(
            list[0]["uri"].as_str().is_some_and(|u| u.ends_with(&format!("out-{b}.img"))),
            "{b}: {list:#?}"
        );
        assert!(moves(&env, b).contains(&mv("completed", 0)), "{b}");
    }
    assert!(!env.path("packer-manifest.json").exists(), "nothing written to the shared default");

    // Another build's manifest where this run reads it: the milestone fails, exit 1.
    let shared = template(
        &env,
        "shared",
        &["echo"],
        "  post-processor \"manifest\" {\n    output = \"packer-manifest.json\"\n    custom_data = { buildstate_build = \"pk-par-1\" }\n  }\n",
    );
    let b = env.build("pk-par-5");
    let r = bs(&env, &["packer", &b, "--", "packer", "build", &shared]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("the run's artifacts were not recorded"), "{r:?}");
    let f = &env.failures(&b)[0];
    assert_eq!(
        (f["component"].as_str(), f["class"].as_str()),
        (Some("manifest"), Some("transient")),
        "{f:#}"
    );
    assert_eq!(env.json(&["build", "show", &b])["build"]["status"], "failed");
}

/// From a hostile review: an `artifact_id` with empty or one-sided parts recorded junk
/// images (`zz:`, `:ami-9`), the same id twice made two, and a file spelt with `..`
/// was a second artifact of the same file.
#[test]
fn a_damaged_artifact_id_is_refused_and_one_file_is_one_artifact() {
    let env = env();
    let b = env.build("pk-junk");
    let manifest = |artifact_id: &str, file: &str| {
        format!(
            r#"{{"builds": [{{"name": "u", "builder_type": "amazon-ebs", "build_time": 1, "files": [{{"name": "{file}", "size": 1}}],
               "artifact_id": "{artifact_id}", "packer_run_uuid": "r1", "custom_data": {{"buildstate_build": "pk-junk"}}}}],
               "last_run_uuid": "r1"}}"#
        )
    };
    std::fs::create_dir_all(env.path("sub")).expect("a directory");
    std::fs::write(env.path("sub/disk.img"), "x").expect("a file");
    for junk in ["us-east-1:ami-1,,:,zz:", ":ami-9", "us-east-1:ami-1,zz:"] {
        let m = write(&env, "m.json", &manifest(junk, "sub/disk.img"));
        let r = bs(&env, &["artifact", "ingest-manifest", &b, &m]);
        assert_eq!(r.code, 7, "{junk}: {r:?}");
        assert!(r.stderr.contains("artifact_id"), "{r:?}");
    }
    assert!(artifacts(&env, &b).is_empty(), "nothing recorded");
    let m = write(
        &env,
        "m.json",
        &manifest("us-east-1:ami-1,us-east-1:ami-1,us-west-2:ami-2", "sub/../sub/disk.img"),
    );
    let r = bs(&env, &["artifact", "ingest-manifest", &b, &m]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = write(&env, "m.json", &manifest("us-east-1:ami-1,us-west-2:ami-2", "sub/disk.img"));
    let r = bs(&env, &["artifact", "ingest-manifest", &b, &m]);
    assert_eq!(r.code, 0, "{r:?}");
    let names: Vec<String> =
        artifacts(&env, &b).iter().map(|a| a["name"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(names.len(), 3, "two regions and one file, however spelt: {names:?}");
}
