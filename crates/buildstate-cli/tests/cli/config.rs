//! Where the store is: `--db`, then `BUILDSTATE_DB`, then the data dir.

use crate::common::{Env, bare_cmd};

#[test]
fn db_flag_and_environment_are_honoured() {
    let env = Env::new();
    let flag_db = env.path("flag/sub/flag.db");
    let out = bare_cmd().args(["init", "--db"]).arg(&flag_db).output().expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(flag_db.exists(), "--db creates the file and its directories");
    assert!(String::from_utf8_lossy(&out.stdout).contains(flag_db.to_str().expect("utf-8")));

    let env_db = env.path("env.db");
    let out = bare_cmd().env("BUILDSTATE_DB", &env_db).arg("init").output().expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(env_db.exists(), "BUILDSTATE_DB is used");

    // The flag wins over the environment.
    let both = env.path("both.db");
    let out =
        bare_cmd().env("BUILDSTATE_DB", &env_db).arg("init").arg("--db").arg(&both).output().expect("run");
    assert!(out.status.success() && both.exists(), "{out:?}");
}

#[test]
fn default_path_is_under_the_data_dir() {
    let env = Env::new();
    let home = env.path("home");
    let xdg = env.path("xdg-data");
    let out = bare_cmd().env("HOME", &home).env("XDG_DATA_HOME", &xdg).arg("init").output().expect("run");
    assert!(out.status.success(), "{out:?}");
    let expected = xdg.join("buildstate").join("buildstate.db");
    assert!(expected.exists(), "store at {}", expected.display());
    assert!(String::from_utf8_lossy(&out.stdout).contains(expected.to_str().expect("utf-8")));

    let out = bare_cmd().env("HOME", &home).env_remove("XDG_DATA_HOME").arg("init").output().expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(home.join(".local/share/buildstate/buildstate.db").exists());
}

#[test]
fn actor_is_recorded() {
    let env = Env::new().with_catalog();
    let b = env.build("act-1");
    env.cmd().args(["state", "complete", &b, "0", "--actor", "ci-bot"]).assert().success();
    let history = env.json(&["history", &b]);
    assert_eq!(history[0]["actor"], "tester");
    assert_eq!(history[1]["actor"], "ci-bot");
    assert_eq!(env.json(&["build", "show", &b])["build"]["created_by"], "tester");
}

#[test]
fn ci_url_is_captured_from_the_environment() {
    let env = Env::new().with_catalog();
    let out = env
        .cmd()
        .args(["build", "create", "--platform", "aws-commercial", "--os", "rhel-9.6", "--image", "base"])
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/images")
        .env("GITHUB_RUN_ID", "77")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let b = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        env.json(&["build", "show", &b])["build"]["ci_url"],
        "https://github.com/acme/images/actions/runs/77"
    );
}
