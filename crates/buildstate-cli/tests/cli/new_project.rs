//! `buildstate new DIR`: the project it writes runs as it is — the dry run (Packer's
//! `null` builder, Ansible on localhost) delivers every build with the real tools, a
//! failure injected at one milestone resumes there — and its refusals write nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Env, Run, expect_error, summary_builds};

/// Fails (never skips) without the tools the project runs.
fn need_tools() {
    for (tool, arg) in [("packer", "version"), ("ansible-playbook", "--version")] {
        let ok = Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
        assert!(ok, "{tool} is not on PATH: run scripts/setup.sh (install_packer_ansible) first");
    }
}

/// `buildstate ARGS…` in `dir`, with Packer's and Ansible's homes inside the fixture.
fn bs_in(env: &Env, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let mut c = env.cmd();
    c.current_dir(dir)
        .env("CHECKPOINT_DISABLE", "1")
        .env("ANSIBLE_LOCAL_TEMP", env.path("ansible-tmp"))
        .env("ANSIBLE_HOME", env.path("ansible-home"))
        .env("XDG_DATA_HOME", env.path("data"))
        .env("XDG_CACHE_HOME", env.path("cache"))
        .args(args);
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().expect("run buildstate").into()
}

/// Writes a project of 2 OS × 2 platforms × 1 image into the fixture; returns its path.
fn new_project(env: &Env) -> PathBuf {
    let dir = env.path("images");
    let r = bs_in(
        env,
        env.dir.path(),
        &[
            "new",
            "images",
            "--os",
            "rhel-9.6,sles-15.7",
            "--platform",
            "aws-commercial",
            "--platform",
            "azure",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{r:?}");
    dir
}

/// (kind, state) of the history's milestone events.
fn moves(env: &Env, b: &str) -> Vec<(String, u64)> {
    env.history(b)
        .iter()
        .filter(|e| matches!(e["kind"].as_str(), Some("started" | "completed" | "skipped" | "failed")))
        .map(|e| (e["kind"].as_str().unwrap_or("").to_owned(), e["state"].as_u64().unwrap_or(999)))
        .collect()
}

#[test]
fn a_new_project_dry_run_delivers_every_build_and_resumes_an_injected_failure() {
    need_tools();
    let env = Env::new();
    let dir = new_project(&env);
    for file in [
        "pipeline.aws.yaml",
        "pipeline.azure.yaml",
        "pipeline.dry-run.yaml",
        "packer/build.pkr.hcl",
        "packer/rhel-9.6.pkr.hcl",
        "packer/sles-15.7.pkr.hcl",
        "ansible/ansible.cfg",
        "ansible/15-base-config.yml",
        "ansible/95-seal.yml",
        "README.md",
        ".gitignore",
        ".gitlab-ci.yml",
        "ci/gitlab.aws.yml",
        "ci/gitlab.azure.yml",
        ".github/workflows/pipeline.aws.yml",
        "ci/concourse.pipeline.azure.yml",
    ] {
        assert!(dir.join(file).is_file(), "{file} is missing");
    }
    // The CI files are `buildstate generate`'s, one job per build of each cloud's file.
    let gitlab = std::fs::read_to_string(dir.join(".gitlab-ci.yml")).expect(".gitlab-ci.yml");
    assert!(
        gitlab.contains("local: ci/gitlab.aws.yml") && gitlab.contains("local: ci/gitlab.azure.yml"),
        "{gitlab}"
    );
    let aws: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("ci/gitlab.aws.yml")).expect("read"))
            .expect("YAML");
    let job =
        aws.as_object().and_then(|m| m.values().find(|v| v.get("parallel").is_some())).expect("a matrix job");
    assert!(job["script"][0].as_str().is_some_and(|s| s.contains("run pipeline.aws.yaml --only")), "{aws}");
    let cfg = std::fs::read_to_string(dir.join("ansible/ansible.cfg")).expect("ansible.cfg");
    assert!(cfg.contains("callbacks_enabled = buildstate"), "{cfg}");

    // Two stores at once, to keep the test short: the dry run of the whole matrix, and
    // a failure injected at 45 into one build of another store.
    let faulty = Env::new();
    std::thread::scope(|s| {
        s.spawn(|| whole_matrix(&env, &dir));
        s.spawn(|| injected_failure(&faulty, &dir));
    });
}

/// The dry run: every build delivered, through every milestone.
fn whole_matrix(env: &Env, dir: &Path) {
    let r = bs_in(env, dir, &["run", "pipeline.dry-run.yaml", "--add-missing", "--jobs", "2", "--json"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).expect("run --json");
    let builds = summary_builds(&summary);
    assert_eq!(builds.len(), 4, "{summary:#}");
    for (b, _) in &builds {
        let show = env.show(b);
        assert_eq!(show["status"], "completed", "{show:#}");
        let done: Vec<u64> =
            moves(env, b).into_iter().filter(|(k, _)| k == "completed").map(|(_, s)| s).collect();
        assert_eq!(done, (0..=100).step_by(5).collect::<Vec<u64>>(), "build {b}: {:?}", moves(env, b));
    }
}

/// A failure injected at 45: the build stops there (exit 8), and the next run, without
/// the injection, resumes at 45 and delivers.
fn injected_failure(env: &Env, dir: &Path) {
    let only = ["--only", "platform=aws-commercial,os=rhel-9.6"];
    let mut args = vec!["run", "pipeline.dry-run.yaml", "--add-missing", "--json"];
    args.extend(only);
    let r = bs_in(env, dir, &args, &[("BUILDSTATE_FAIL_AT", "45")]);
    assert_eq!(r.code, 8, "{r:?}");
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).expect("run --json");
    let b = summary_builds(&summary)[0].0.clone();
    let show = env.show(&b);
    assert_eq!((show["state"].as_u64(), show["status"].as_str()), (Some(45), Some("failed")), "{show:#}");
    let f = &env.failures(&b)[0];
    assert_eq!(f["type"], "ansible", "{f:#}");
    assert!(f["message"].as_str().unwrap_or("").contains("failure injected at milestone 45"), "{f:#}");

    let before = moves(env, &b).len();
    let r = bs_in(env, dir, &args, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = moves(env, &b);
    let again: Vec<u64> = after[before..].iter().filter(|(k, _)| k == "started").map(|(_, s)| *s).collect();
    assert_eq!(again, (45..=100).step_by(5).collect::<Vec<u64>>(), "{after:?}");
    assert_eq!(env.show(&b)["status"], "completed");
}

#[test]
fn new_refuses_bad_targets_and_names_and_writes_nothing() {
    let env = Env::new();
    let top = env.dir.path();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(top)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    std::fs::create_dir(env.path("full")).expect("mkdir");
    std::fs::write(env.path("full/keep.txt"), "mine").expect("write");
    std::fs::write(env.path("a-file"), "x").expect("write");
    let before = listing();
    let cases: [(&[&str], &str); 6] = [
        (&["new", "full"], "is not empty"),
        (&["new", "a-file"], "is not a directory"),
        (&["new", "p1", "--os", "RHEL 9"], "--os"),
        (&["new", "p2", "--os", ""], "--os is empty"),
        (&["new", "p3", "--platform", "vsphere"], "names no cloud"),
        (&["new", "p4", "--name=Bad_Name"], "--name"),
    ];
    for (args, what) in cases {
        let r = bs_in(&env, top, args, &[]);
        let line = expect_error(&r, 2, &format!("{args:?}"));
        assert!(line.contains(what), "{args:?}: {line}");
        assert!(r.stderr.contains("hint:"), "{args:?}: {r:?}");
    }
    assert_eq!(listing(), before, "a refusal wrote something");
    assert_eq!(std::fs::read_to_string(env.path("full/keep.txt")).expect("kept"), "mine");

    // An empty directory is fine; the name comes from it, made valid.
    std::fs::create_dir(env.path("My Images")).expect("mkdir");
    let r = bs_in(&env, top, &["new", "My Images"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let pipeline = std::fs::read_to_string(env.path("My Images/pipeline.yaml")).expect("pipeline.yaml");
    assert!(pipeline.contains("name: my-images"), "{pipeline}");
    assert!(!env.path("My Images/pipeline.aws.yaml").exists());
    // The real pipeline parses: the runner only finds that the filter selects nothing.
    let r = bs_in(&env, &env.path("My Images"), &["run", "pipeline.yaml", "--only", "os=none"], &[]);
    let line = expect_error(&r, 2, "run pipeline.yaml");
    assert!(line.contains("selects none of the 1 builds of pipeline my-images"), "{line}");
}
