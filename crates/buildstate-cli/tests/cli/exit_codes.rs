//! The exit codes of `run`, `enqueue`, `worker` and `exec` against the real binary: a
//! runner error ends with its kind's code (README, "Exit codes"), not 1; what can be
//! checked before the store is touched, or before any build is created, is.

use std::path::Path;
use std::time::Duration;

use buildstate_core::LeaseRequest;
use buildstate_sqlite::SqliteStore;
use buildstate_store::Store;
use serde_json::Value;

use crate::common::{Env, Run, expect_error};

/// A pipeline `name` over `platforms` × rhel-9.6 × `images`, whose 0 and 100 run `true`
/// and whose 10 fails (exit 2, persistent) for image `hana`.
fn pipeline(env: &Env, name: &str, platforms: &[&str], images: &[&str]) -> String {
    let yaml = format!(
        "name: {name}\nmatrix:\n  platform: [{}]\n  os: [rhel-9.6]\n  image: [{}]\n\
         states:\n  0: {{run: \"true\"}}\n  10: {{run: 'test \"$BUILDSTATE_IMAGE\" != hana || exit 2'}}\n  100: {{run: \"true\"}}\n",
        platforms.join(", "),
        images.join(", ")
    );
    env.write(&format!("{name}.yml"), &yaml).to_str().expect("utf-8 path").to_owned()
}

fn builds(env: &Env) -> Vec<Value> {
    env.json(&["build", "list"]).as_array().cloned().unwrap_or_default()
}

/// A name of the matrix missing from the catalog is found before any build is created —
/// also the builds of the cells whose names are all there — for `run` and `enqueue`
/// alike, with the `add` command and every flag it requires; run as given, they fix it.
#[test]
fn a_missing_matrix_name_is_exit_3_before_any_build_is_created() {
    let env = Env::new().with_catalog();
    let path = pipeline(&env, "partial", &["aws-commercial", "azure"], &["base", "gpu"]);
    for command in ["run", "enqueue"] {
        let r = env.run(&[command, &path]);
        let err = expect_error(&r, 3, command);
        assert!(
            err.contains("image-type `gpu` (known: base) and platform `azure` (known: aws-commercial) are not in the catalog of"),
            "{command}: {err}"
        );
        let hint = r.stderr.lines().nth(1).unwrap_or_default();
        assert_eq!(
            hint,
            "hint: add them with `buildstate image-type add gpu` and \
             `buildstate platform add azure --provider azure --region eastus`",
            "{command}"
        );
        assert_eq!(builds(&env), Vec::<Value>::new(), "{command} created a build although a name is missing");
    }
    // An OS: `os add` requires --family and --major.
    let os = env.write(
        "os.yml",
        "name: os\nmatrix: {platform: [aws-commercial], os: [sles-15.7], image: [base]}\nstates: {0: {run: \"true\"}}\n",
    );
    let r = env.run(&["enqueue", os.to_str().expect("utf-8 path")]);
    expect_error(&r, 3, "a missing OS");
    assert!(r.stderr.contains("`buildstate os add sles-15.7 --family sles --major 15 --minor 7`"), "{r:?}");

    let hint = env.run(&["enqueue", &path]).stderr;
    let hint = hint.lines().find_map(|l| l.strip_prefix("hint: ")).expect("a hint");
    for command in hint.split('`').skip(1).step_by(2) {
        let args: Vec<&str> = command.split(' ').skip(1).collect();
        env.ok(&args);
    }
    let queued = env.json(&["enqueue", &path]);
    assert_eq!(queued.as_array().map(Vec::len), Some(4), "the hinted commands fixed it: {queued}");
}

/// `--only` that selects no cell is a usage error, for `run`, `enqueue` and `worker`,
/// before anything runs or is created; the message lists what the matrix has.
#[test]
fn only_that_selects_nothing_is_exit_2() {
    let env = Env::new().with_catalog();
    let path = pipeline(&env, "sel", &["aws-commercial"], &["base"]);
    for args in [
        vec!["run", path.as_str(), "--only", "platform=gcp*"],
        vec!["run", path.as_str(), "--only", "os=rhel-9.6,image=hana", "--only", "platform=azure"],
        vec!["enqueue", path.as_str(), "--only", "platform=gcp*"],
        vec!["worker", path.as_str(), "--only", "platform=gcp*", "--exit-when-idle"],
    ] {
        let err = env.fails(&args, 2);
        assert!(
            err.contains("selects none of the 1 builds of pipeline sel (aws-commercial/rhel-9.6/base)"),
            "{err}"
        );
        assert!(err.contains("--only "), "names the filter: {err}");
    }
    let err = env.fails(&["run", &path, "--only", "os=rhel-9.6,image=hana", "--only", "platform=azure"], 2);
    assert!(
        err.starts_with("error: --only os=rhel-9.6,image=hana --only platform=azure selects none"),
        "{err}"
    );
    assert_eq!(builds(&env), Vec::<Value>::new(), "nothing was created");
    // A filter that selects something still runs.
    let r = env.run(&["run", &path, "--only", "platform=aws*", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// `--lease-ttl` outside 3 s … 24 h is refused while the command line is read: exit 2,
/// and the store is not even opened (a store that does not exist is not created).
#[test]
fn lease_ttl_outside_3s_to_24h_is_exit_2_before_the_store_is_touched() {
    let env = Env::new();
    let path = pipeline(&env, "ttl", &["aws-commercial"], &["base"]);
    for ttl in ["0s", "1s", "2999ms", "24h1s", "25h"] {
        for args in [
            vec!["run", path.as_str(), "--lease-ttl", ttl],
            vec!["worker", path.as_str(), "--lease-ttl", ttl, "--exit-when-idle"],
            vec!["exec", "some-build", "0", "--lease-ttl", ttl, "--", "true"],
        ] {
            let err = env.fails(&args, 2);
            assert!(err.contains("--lease-ttl"), "{args:?}: {err}");
            assert!(err.contains("is outside 3s … 24h") || err.contains("more than zero"), "{args:?}: {err}");
        }
    }
    // From the environment, as from the flag.
    let r: Run =
        env.cmd().env("BUILDSTATE_LEASE_TTL", "1s").args(["run", &path]).output().expect("run").into();
    expect_error(&r, 2, "BUILDSTATE_LEASE_TTL=1s");
    assert!(!env.db.exists(), "a refused --lease-ttl opened (and created) the store");

    // The bounds themselves are accepted.
    let env = env.with_catalog();
    for ttl in ["3s", "24h"] {
        let r = env.run(&["run", &path, "--new", "--lease-ttl", ttl, "--json"]);
        assert_eq!(r.code, 0, "--lease-ttl {ttl}: {r:?}");
    }
}

/// A worker that ran out of work exits 8 when a build it ran is not delivered, and 0
/// when every one is, as `run` does.
#[test]
fn worker_exit_when_idle_is_8_when_a_build_it_ran_is_not_delivered() {
    let env = Env::new().with_catalog().with_images(&["hana"]);
    let good = pipeline(&env, "good", &["aws-commercial"], &["base"]);
    env.ok(&["enqueue", &good]);
    let r = env.run(&["worker", &good, "--exit-when-idle", "--poll", "100ms", "--name", "w-good"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("worker w-good: ran 1 build(s), 1 delivered"), "{r:?}");

    let mixed = pipeline(&env, "mixed", &["aws-commercial"], &["base", "hana"]);
    env.ok(&["enqueue", &mixed]);
    let r = env.run(&["worker", &mixed, "--exit-when-idle", "--poll", "100ms", "--name", "w-mixed"]);
    assert_eq!(r.code, 8, "the hana build failed at 10 for good: {r:?}");
    assert!(r.stdout.contains("worker w-mixed: ran 2 build(s), 1 delivered"), "{r:?}");
    let failed: Vec<String> = builds(&env)
        .iter()
        .filter(|b| b["status"] == "failed")
        .map(|b| b["number"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(r.stdout.contains(&format!("not delivered: {}", failed[0])), "names the build: {r:?}");

    // Idle from the start (the failed build needs a person, nothing else is open): 0.
    let r = env.run(&["worker", &mixed, "--exit-when-idle", "--poll", "100ms"]);
    assert_eq!(r.code, 0, "a worker that ran nothing has nothing undelivered: {r:?}");
}

/// Leases `number` to another runner, on another host, for an hour.
fn lease_elsewhere(db: &Path, number: &str) {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
        let store = SqliteStore::open(db).expect("open the store");
        let b = store.find_build(number).await.expect("find the build");
        let request = LeaseRequest {
            owner: "runner-9".into(),
            host: "ci-host-9".into(),
            pid: 4242,
            ttl: Duration::from_secs(3600),
        };
        store.acquire_lease(b.id, &request).await.expect("acquire the lease");
    });
}

/// Errors from inside the runner keep their kind's code: a missing or ambiguous build
/// for `run --build`, a held lease or a refused transition for `exec` (these were all
/// exit 1 once, whatever the kind).
#[test]
fn runner_errors_end_with_their_kinds_exit_code() {
    let env = Env::new().with_catalog();
    let path = pipeline(&env, "kinds", &["aws-commercial"], &["base"]);
    let err = env.fails(&["run", &path, "--build", "no-such-build"], 3);
    assert!(err.contains("no build matches `no-such-build`"), "{err}");
    env.build("amb-1");
    env.build("amb-2");
    let err = env.fails(&["run", &path, "--build", "amb"], 2);
    assert!(err.contains("matches 2 builds"), "{err}");

    let exec = |args: &[&str]| -> Run {
        env.cmd().current_dir(env.dir.path()).args(args).output().expect("run buildstate").into()
    };
    // Not the build's milestone: the rules refuse it, 4, and nothing runs.
    let r = exec(&["exec", "amb-1", "10", "--", "touch", "ran"]);
    expect_error(&r, 4, "exec ahead of the build");
    lease_elsewhere(&env.db, "amb-2");
    let r = exec(&["exec", "amb-2", "0", "--", "touch", "ran"]);
    let err = expect_error(&r, 5, "exec on a build another runner holds");
    assert!(err.contains("runner-9@ci-host-9 (pid 4242)"), "{err}");
    assert!(!env.path("ran").exists(), "a refused exec ran its command");
}
