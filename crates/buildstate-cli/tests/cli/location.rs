//! Where the data lives: a mistyped `--db` fails instead of becoming a new empty store;
//! object storage is not a store; a directory becomes a JSON store only when asked;
//! the password in `BUILDSTATE_DB` is never printed; each store keeps its own logs.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Env, PgDb, Run, bare_cmd, bin, expect_error};

/// The binary on `db` (`""`: the default store), in `env`'s directory, with a home and
/// data dir inside it: the default store of these tests is never the real one.
pub fn on(env: &Env, db: &str, args: &[&str]) -> Run {
    let mut cmd = bare_cmd();
    cmd.current_dir(env.dir.path())
        .env("HOME", env.path("home"))
        .env("XDG_DATA_HOME", env.path("xdg"))
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("BUILDSTATE_ACTOR", "tester");
    if !db.is_empty() {
        cmd.env("BUILDSTATE_DB", db);
    }
    cmd.args(args).output().expect("run buildstate").into()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const READS: &[&[&str]] = &[
    &["build", "list"],
    &["build", "show", "x"],
    &["history", "x"],
    &["export", "x"],
    &["platform", "list"],
    &["failure", "list"],
    &["lease", "list"],
    &["resume", "x"],
    // Writes to something that would have to exist already.
    &["state", "complete", "x", "0"],
    &["meta", "set", "x", "k", "v"],
];

#[test]
fn reads_of_a_missing_store_fail_and_create_nothing() {
    let env = Env::new();
    let db = s(&env.db).to_owned();
    for args in READS {
        let err = env.fails(args, 3);
        assert_eq!(
            err,
            format!("error: no store at {db}; create it with `buildstate init --db {db}`"),
            "{args:?}"
        );
    }
    assert!(!env.db.exists(), "no store was created");

    // A typo in a directory name: no directories either.
    let typo = env.path("tpyo/deeper/buildstate.db");
    let err = expect_error(&on(&env, s(&typo), &["build", "list"]), 3, "typo");
    assert!(err.contains(&format!("no store at {}", s(&typo))), "{err}");
    assert!(!env.path("tpyo").exists());

    // The default store (also what an empty BUILDSTATE_DB means): the same, and the
    // data dir is left alone.
    let default = env.path("xdg/buildstate/buildstate.db");
    let expected = format!("error: no store at {}; create it with `buildstate init`", s(&default));
    let err = expect_error(&on(&env, "", &["build", "list"]), 3, "default store");
    assert_eq!(err, expected);
    let r: Run = bare_cmd()
        .current_dir(env.dir.path())
        .env("XDG_DATA_HOME", env.path("xdg"))
        .env("XDG_CONFIG_HOME", env.path("config"))
        .env("BUILDSTATE_DB", "")
        .args(["build", "list"])
        .output()
        .expect("run buildstate")
        .into();
    assert_eq!(expect_error(&r, 3, "empty BUILDSTATE_DB"), expected);
    assert!(!env.path("xdg").exists());
    assert_eq!(entries(env.dir.path()), Vec::<String>::new(), "nothing created anywhere");
}

#[test]
fn writes_create_a_store_only_inside_an_existing_directory_and_say_so() {
    let env = Env::new();
    let r = env.run(&["platform", "add", "aws", "--provider", "aws"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "added platform aws\n"), "{r:?}");
    assert_eq!(r.stderr, format!("created a new store at {}\n", s(&env.db)));
    assert!(env.db.is_file());
    let r = env.run(&["platform", "add", "gcp", "--provider", "gcp"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "said once: {r:?}");

    let lost = env.path("lost/buildstate.db");
    let r = on(&env, s(&lost), &["platform", "add", "aws", "--provider", "aws"]);
    let err = expect_error(&r, 3, "write in a missing directory");
    assert!(err.contains(&format!("no directory {}", s(&env.path("lost")))), "{err}");
    assert!(r.stderr.contains(&format!("`buildstate init --db {}`", s(&lost))), "{r:?}");
    assert!(!env.path("lost").exists(), "no directory was created");

    // `init` is asked to create it: directories and all.
    let r = on(&env, s(&lost), &["init"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(s(&lost)) && r.stderr.contains("created a new store at"), "{r:?}");
    assert!(lost.is_file());

    // The default store's directories are ours to create.
    let r = on(&env, "", &["platform", "add", "aws", "--provider", "aws"]);
    assert_eq!(r.code, 0, "{r:?}");
    let default = env.path("xdg/buildstate/buildstate.db");
    assert_eq!(r.stderr, format!("created a new store at {}\n", s(&default)));
    assert!(default.is_file());
}

#[test]
fn object_storage_is_refused_as_a_store_with_a_pointer_to_sync() {
    let env = Env::new();
    for url in ["s3://bucket/builds", "az://container/builds", "gs://bucket/builds"] {
        for args in [&["build", "list"][..], &["platform", "add", "aws", "--provider", "aws"], &["init"]] {
            let r = on(&env, url, args);
            let err = expect_error(&r, 2, url);
            let scheme = url.split("://").next().unwrap_or_default();
            assert!(err.contains(&format!("{scheme}://")), "{url}: {err}");
            assert!(r.stderr.contains("hint: ") && r.stderr.contains("--sync"), "{url}: {r:?}");
        }
    }
    assert_eq!(entries(env.dir.path()), Vec::<String>::new(), "nothing created (no `s3:` directory)");
}

#[test]
fn a_directory_is_a_json_store_only_when_asked_or_when_it_holds_one() {
    let env = Env::new();
    let dir = env.path("store");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("notes.txt"), "not a store\n").expect("write");

    // A plain directory is neither guessed to be a JSON store nor made into one.
    for args in [&["build", "list"][..], &["platform", "add", "aws", "--provider", "aws"]] {
        let r = on(&env, s(&dir), args);
        let err = expect_error(&r, 2, "plain directory");
        assert!(err.contains(&format!("{} is a directory", s(&dir))), "{err}");
        assert!(r.stderr.contains(&format!("file://{}", s(&dir))), "the hint names file://: {r:?}");
    }
    assert_eq!(entries(&dir), ["notes.txt"]);

    // `file://` says so: reads still need the store to exist, a write creates it.
    let url = format!("file://{}", s(&dir));
    let err = expect_error(&on(&env, &url, &["build", "list"]), 3, "read of file://");
    assert_eq!(err, format!("error: no store at {url}; create it with `buildstate init --db {url}`"));
    let r = on(&env, &url, &["platform", "add", "aws", "--provider", "aws"]);
    assert_eq!((r.code, r.stderr.clone()), (0, format!("created a new store at {url}\n")), "{r:?}");

    // Now it holds one, the plain path opens it too.
    let r = on(&env, s(&dir), &["platform", "list"]);
    assert!(r.code == 0 && r.stdout.contains("aws"), "{r:?}");

    // A directory with a SQLite store in it: the hint says which file.
    let other = env.path("other");
    assert_eq!(on(&env, s(&other.join("buildstate.db")), &["init"]).code, 0);
    let r = on(&env, s(&other), &["build", "list"]);
    expect_error(&r, 2, "directory holding a SQLite file");
    assert!(r.stderr.contains(&format!("--db {}", s(&other.join("buildstate.db")))), "{r:?}");
}

#[test]
fn not_found_names_the_store_it_looked_in() {
    let env = Env::new().with_catalog();
    let b = env.build("loc-1");
    let db = s(&env.db).to_owned();
    let cases: &[(&[&str], String)] = &[
        (&["build", "show", "nope"], format!("no build matches `nope` in {db};")),
        (&["history", "nope"], format!("no build matches `nope` in {db};")),
        (&["platform", "show", "azure"], format!("platform `azure` is not in the catalog of {db}")),
        (&["failure", "resolve", &b, "--failure", "9", "--notes", "x"], format!("failure number 9 in {db};")),
        (&["meta", "get", &b, "nokey"], format!("no metadata key `nokey` in {db}")),
        (&["logs", &b], format!("has no recorded log in {db}")),
    ];
    for (args, expected) in cases {
        let err = env.fails(args, 3);
        assert!(err.contains(expected.as_str()), "{args:?}: {err}");
    }
    let url = format!("file://{}", s(&env.path("json")));
    let r = on(&env, &url, &["image-type", "add", "base"]);
    assert_eq!(r.code, 0, "{r:?}");
    let err = expect_error(&on(&env, &url, &["export", "nope"]), 3, "file store");
    assert!(err.contains(&format!("no build matches `nope` in {url};")), "{err}");
}

const SECRET: &str = "s3cret";

/// `BUILDSTATE_DB` holds a PostgreSQL password (and `BUILDSTATE_SYNC` a SAS signature):
/// neither help, errors nor debug logs print them.
#[test]
fn the_password_in_buildstate_db_is_never_printed() {
    let db = format!("postgres://u:{SECRET}@127.0.0.1:1/x");
    let cmd = |args: &[&str]| -> Run {
        bare_cmd()
            .env("BUILDSTATE_DB", &db)
            .env("BUILDSTATE_SYNC", format!("az://c/p?sig={SECRET}"))
            .env("BUILDSTATE_LOG", "trace")
            .args(args)
            .output()
            .expect("run buildstate")
            .into()
    };
    for args in
        [&["--help"][..], &["build", "list", "--help"], &["help", "build", "list"], &["run", "--help"]]
    {
        let r = cmd(args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.stdout.contains("[env: BUILDSTATE_DB]"), "{args:?}: the variable is named: {}", r.stdout);
        assert!(!r.stdout.contains(SECRET) && !r.stderr.contains(SECRET), "{args:?}: {r:?}");
    }
    let r = cmd(&["build", "list"]);
    assert_eq!(r.code, 6, "nothing listens on port 1: {r:?}");
    assert!(r.stderr.contains("postgres://u:***@127.0.0.1:1/x"), "{r:?}");
    assert!(!r.stderr.contains(SECRET), "{r:?}");
    // Given as a flag, and as object storage by mistake.
    let r = cmd(&["build", "list", "--db", &db]);
    assert!(r.code == 6 && !r.stderr.contains(SECRET), "{r:?}");
    let r = cmd(&["build", "list", "--db", &format!("s3://key:{SECRET}@bucket/p")]);
    assert!(r.code == 2 && !r.stderr.contains(SECRET), "{r:?}");
}

/// The log path `exec` recorded for attempt 1 of `build` at 0.
pub fn log_of(env: &Env, db: &str, build: &str) -> PathBuf {
    let r = on(env, db, &["exec", build, "0", "--", "echo", "hello from the step"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = on(env, db, &["history", build, "--json"]);
    let history: serde_json::Value = serde_json::from_str(&r.stdout).expect("history JSON");
    let log = history
        .as_array()
        .and_then(|events| events.iter().find_map(|e| e["log"].as_str()))
        .unwrap_or_else(|| panic!("no log in {history}"));
    let r = on(env, db, &["logs", build]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello from the step\n"), "{r:?}");
    PathBuf::from(log)
}

pub fn catalog_and_build(env: &Env, db: &str, number: &str) {
    for args in [
        &["platform", "add", "aws", "--provider", "aws"][..],
        &["os", "add", "rhel-9.6", "--family", "rhel", "--major", "9"],
        &["image-type", "add", "base"],
        &["build", "create", "--platform", "aws", "--os", "rhel-9.6", "--image", "base", "--number", number],
    ] {
        let r = on(env, db, args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
    }
}

/// Attempt logs default to a directory of their store's own: beside the SQLite file,
/// inside a JSON store's directory, and for PostgreSQL under the data dir in a directory
/// named after the database — never the default SQLite store's `logs/`.
#[test]
fn each_store_keeps_its_logs_apart() {
    let env = Env::new();
    let default_logs = env.path("xdg/buildstate/logs");

    catalog_and_build(&env, "", "on-default");
    let log = log_of(&env, "", "on-default");
    assert!(log.starts_with(&default_logs), "{}", log.display());

    let json = env.path("json");
    let url = format!("file://{}", s(&json));
    catalog_and_build(&env, &url, "on-json");
    let log = log_of(&env, &url, "on-json");
    assert!(log.starts_with(json.join("logs")), "{}", log.display());

    let pg = PgDb::new();
    catalog_and_build(&env, &pg.url, "on-pg");
    let log = log_of(&env, &pg.url, "on-pg");
    let own = env.path("xdg/buildstate/postgres");
    assert!(log.starts_with(&own) && !log.starts_with(&default_logs), "{}", log.display());
    let store_dir = log.strip_prefix(&own).ok().and_then(|p| p.components().next()).map(|c| c.as_os_str());
    let store_dir = store_dir.and_then(|d| d.to_str()).unwrap_or_default();
    assert!(
        store_dir.ends_with(&pg.name) && !store_dir.contains("buildstate:"),
        "named after the database: {store_dir}"
    );
}

/// Runs the binary as a user who cannot write the store (`nobody` when the tests run as
/// root, who could write anything).
fn as_reader(db: &Path, args: &[&str]) -> Run {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).expect("stat /proc/self");
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    cmd.env_remove("BUILDSTATE_LOG")
        .env("BUILDSTATE_DB", db)
        .args(args)
        .output()
        .expect("run buildstate")
        .into()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A store shipped read-only (file mode 0444, or in a read-only directory) can still be
/// listed, shown and exported.
#[test]
fn a_read_only_sqlite_store_can_be_read() {
    let env = Env::new();
    env.ok(&["init", "--sample"]);
    let listed = env.json(&["build", "list"]);
    let number = listed[0]["number"].as_str().expect("a sample build").to_owned();
    let exported = env.export(&number);
    chmod(env.dir.path(), 0o755);
    chmod(&env.db, 0o444);
    for (what, dir_mode) in [("file 0444", 0o755), ("directory 0555", 0o555)] {
        chmod(env.dir.path(), dir_mode);
        let r = as_reader(&env.db, &["build", "list", "--json"]);
        assert_eq!(r.code, 0, "{what}: {r:?}");
        // `duration_ms` of an unfinished build is live (now − start): compare the rest.
        let stable = |v: &serde_json::Value| {
            let mut v = v.clone();
            for b in v.as_array_mut().into_iter().flatten() {
                b.as_object_mut().map(|o| o.remove("duration_ms"));
            }
            v
        };
        let got: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
        assert_eq!(stable(&got), stable(&listed), "{what}");
        let r = as_reader(&env.db, &["build", "show", &number]);
        assert!(r.code == 0 && r.stdout.contains(&number), "{what}: {r:?}");
        let r = as_reader(&env.db, &["export", &number]);
        assert_eq!((r.code, r.stdout.as_str()), (0, exported.as_str()), "{what}: {r:?}");
        let r = as_reader(&env.db, &["state", "start", &number, "0"]);
        assert_ne!(r.code, 0, "{what}: a write is refused: {r:?}");
    }
    chmod(env.dir.path(), 0o755);
    chmod(&env.db, 0o644);
}
