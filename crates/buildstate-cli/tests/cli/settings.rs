//! Configuration and CLI conventions against the real binary: the layers (defaults, the
//! config file, `BUILDSTATE_*`, flags) and `config show`, config-file errors, retry
//! policies and runner settings from the file reaching `run`, `--color` / `NO_COLOR`,
//! `--quiet`, shell completions, the man page, and `--json` that is data.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Env, Run, expect_error};

/// The fixture's binary with its config dir inside the fixture (never the user's own
/// `~/.config/buildstate`), and no colour or config variables from outside.
fn cmd(env: &Env) -> assert_cmd::Command {
    let mut c = env.cmd();
    c.env("XDG_CONFIG_HOME", env.path("xdg-config"));
    for v in ["BUILDSTATE_CONFIG", "BUILDSTATE_SYNC", "BUILDSTATE_LEASE_TTL", "BUILDSTATE_GRACE"] {
        c.env_remove(v);
    }
    for v in ["BUILDSTATE_LOGS_DIR", "BUILDSTATE_COLOR", "NO_COLOR", "TERM"] {
        c.env_remove(v);
    }
    c
}

fn run(mut c: assert_cmd::Command, args: &[&str]) -> Run {
    c.args(args).output().expect("run buildstate").into()
}

fn ok(c: assert_cmd::Command, args: &[&str]) -> String {
    let r = run(c, args);
    assert_eq!(r.code, 0, "buildstate {args:?}: {r:?}");
    r.stdout
}

fn show(c: assert_cmd::Command) -> Value {
    let out = ok(c, &["config", "show", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("config show --json: {e}: {out}"))
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
    path.to_path_buf()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn config_show_names_the_source_of_every_value_and_hides_secrets() {
    let env = Env::new();
    let file = write(
        &env.path("conf/bs.toml"),
        "# a team's settings\n\
         db = \"postgres://ci:s3cret-pw@db.invalid:5432/buildstate?sslmode=disable\"\n\
         actor = \"from-file\"\n\
         lease_ttl = \"2m\"\n\
         grace = \"9s\"\n\
         color = \"never\"\n\
         \n\
         [retry.5]\n\
         max_attempts = 3\n\
         backoff = { kind = \"exponential\", initial = \"5m\", max = \"30m\", jitter = true }\n",
    );
    let mut c = cmd(&env);
    c.env_remove("BUILDSTATE_DB")
        .env("BUILDSTATE_CONFIG", &file)
        .env("BUILDSTATE_ACTOR", "from-env")
        .env("BUILDSTATE_GRACE", "7s")
        .env("BUILDSTATE_LEASE_TOKEN", "987654321")
        .args(["--sync", "file:///srv/copies"]);
    let v = show(c);
    let conf = s(&file);
    assert_eq!(
        v["config_file"],
        serde_json::json!({"value": conf, "source": "env", "from": "BUILDSTATE_CONFIG"})
    );
    let setting = |k: &str| v["settings"][k].clone();
    assert_eq!(
        setting("db"),
        serde_json::json!({
            "value": "postgres://ci:***@db.invalid:5432/buildstate?sslmode=disable",
            "source": "file", "from": conf
        })
    );
    assert_eq!(
        setting("sync"),
        serde_json::json!({"value": "file:///srv/copies", "source": "flag", "from": "--sync"})
    );
    assert_eq!(
        setting("actor"),
        serde_json::json!({"value": "from-env", "source": "env", "from": "BUILDSTATE_ACTOR"})
    );
    assert_eq!(setting("lease_ttl"), serde_json::json!({"value": "2m", "source": "file", "from": conf}));
    assert_eq!(
        setting("grace"),
        serde_json::json!({"value": "7s", "source": "env", "from": "BUILDSTATE_GRACE"})
    );
    assert_eq!(setting("logs_dir"), serde_json::json!({"value": null, "source": "default", "from": null}));
    assert_eq!(setting("color"), serde_json::json!({"value": "never", "source": "file", "from": conf}));
    assert_eq!(
        setting("lease_token"),
        serde_json::json!({"value": "***", "source": "env", "from": "BUILDSTATE_LEASE_TOKEN"})
    );

    // Retry: the file's rule for 5 over the built-in policy; everything else built in.
    let retry = v["retry"].as_array().expect("retry rows");
    let five = retry.iter().find(|r| r["states"] == "5").expect("a row for 5");
    assert_eq!((five["source"].as_str(), five["from"].as_str()), (Some("file"), Some(conf)));
    assert_eq!(
        five["policy"],
        serde_json::json!({
            "max_attempts": 3,
            "backoff": {"kind": "exponential", "initial_ms": 300_000, "factor": 2, "max_ms": 1_800_000, "jitter": true},
            "transient": {"exit_codes": [], "output_patterns": []}
        })
    );
    let config = retry.iter().find(|r| r["states"] == "10-65").expect("a row for 10-65");
    assert_eq!(config["source"], "default");
    assert_eq!(config["policy"]["backoff"], serde_json::json!({"kind": "fixed", "delay_ms": 10_000}));
    assert_eq!(retry.iter().find(|r| r["states"] == "70-90").expect("70-90")["policy"]["max_attempts"], 1);
    assert_eq!(retry.first().expect("rows")["first"], 0);
    assert_eq!(retry.last().expect("rows")["last"], 100);

    // The text report says the same, and neither shows a secret.
    let mut c = cmd(&env);
    c.env_remove("BUILDSTATE_DB")
        .env("BUILDSTATE_CONFIG", &file)
        .env("BUILDSTATE_LEASE_TOKEN", "987654321")
        .args(["--actor", "from-flag"]);
    let text = ok(c, &["config", "show"]);
    assert!(text.starts_with(&format!("config file: {conf} (env BUILDSTATE_CONFIG)\n")), "{text}");
    let row = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} row: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("db"),
        format!("db postgres://ci:***@db.invalid:5432/buildstate?sslmode=disable file {conf}")
    );
    assert_eq!(row("actor"), "actor from-flag flag --actor");
    assert_eq!(row("sync"), "sync - default");
    assert_eq!(row("lease_token"), "lease_token *** env BUILDSTATE_LEASE_TOKEN");
    assert_eq!(row("5"), format!("5 3 exponential 5m → 30m, jitter - file {conf}"));
    assert_eq!(row("70-90"), "70-90 1 none - default");
    for secret in ["s3cret-pw", "987654321"] {
        assert!(!text.contains(secret) && !v.to_string().contains(secret), "{secret} shown: {text}");
    }
}

#[test]
fn the_default_file_is_read_and_its_store_is_the_one_opened() {
    let env = Env::new();
    let db = env.path("from-file/bs.db");
    let default_file = write(
        &env.path("xdg-config/buildstate/config.toml"),
        &format!("db = \"{}\"\nactor = \"filer\"\n", s(&db)),
    );
    let mut c = cmd(&env);
    c.env_remove("BUILDSTATE_DB").env_remove("BUILDSTATE_ACTOR");
    let out = ok(c, &["init"]);
    assert!(db.exists(), "the file's db is the store opened: {out}");
    assert!(out.contains(s(&db)), "{out}");

    let mut c = cmd(&env);
    c.env_remove("BUILDSTATE_DB").env_remove("BUILDSTATE_ACTOR");
    let v = show(c);
    assert_eq!(
        v["config_file"],
        serde_json::json!({"value": s(&default_file), "source": "default", "from": null})
    );
    assert_eq!(v["settings"]["db"]["value"], s(&db));
    assert_eq!(
        v["settings"]["actor"],
        serde_json::json!({"value": "filer", "source": "file", "from": s(&default_file)})
    );

    // The environment beats the file, a flag beats both; `--config` picks another file.
    let env_db = env.path("env.db");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_DB", &env_db);
    assert_eq!(
        show(c)["settings"]["db"],
        serde_json::json!({"value": s(&env_db), "source": "env", "from": "BUILDSTATE_DB"})
    );
    let other = write(&env.path("other.toml"), "actor = \"other\"\n");
    let mut c = cmd(&env);
    c.env_remove("BUILDSTATE_ACTOR").args(["--config", s(&other)]);
    let v = show(c);
    assert_eq!(
        v["config_file"],
        serde_json::json!({"value": s(&other), "source": "flag", "from": "--config"})
    );
    assert_eq!(v["settings"]["actor"]["value"], "other");
    assert_eq!(v["settings"]["db"]["source"], "env", "the fixture's BUILDSTATE_DB");

    // No file anywhere: every value is a default.
    let bare = Env::new();
    let mut c = cmd(&bare);
    c.env_remove("BUILDSTATE_DB").env_remove("BUILDSTATE_ACTOR").env("USER", "someone");
    let v = show(c);
    assert_eq!(v["config_file"], serde_json::json!({"value": null, "source": "default", "from": null}));
    assert_eq!(
        v["settings"]["actor"],
        serde_json::json!({"value": format!("someone@{}", crate::common::hostname()), "source": "default", "from": null})
    );
    assert_eq!(
        v["settings"]["lease_ttl"],
        serde_json::json!({"value": "60s", "source": "default", "from": null})
    );
    assert_eq!(v["settings"]["grace"]["value"], "5s");
    assert_eq!(v["settings"]["color"]["value"], "auto");
    assert!(
        v["settings"]["db"]["value"].as_str().is_some_and(|d| d.ends_with("buildstate/buildstate.db")),
        "{v}"
    );
}

#[test]
fn a_bad_config_file_is_one_line_with_file_line_and_column() {
    let env = Env::new();
    let check = |text: &str, expected: &str| {
        let file = write(&env.path("bad.toml"), text);
        let mut c = cmd(&env);
        c.env("BUILDSTATE_CONFIG", &file);
        // Any command: the file is read before anything runs, and nothing is created.
        let r = run(c, &["build", "list"]);
        let line = expect_error(&r, 2, text);
        assert_eq!(line, format!("error: {}:{expected}", s(&file)), "{text:?}: {r:?}");
        r
    };
    check("db = \"x\"\nlease_ttl = = 3\n", "2:13: extra `=`, expected nothing");
    check(
        "lease_ttl = \"soon\"\n",
        "1:13: lease_ttl: `soon` is not a duration: use forms like 500ms, 90s, 2m or 1h30m",
    );
    check(
        "color = \"sometimes\"\n",
        "1:9: color: `sometimes` is not a colour choice; expected auto, always or never",
    );
    check("actor = 5\n", "1:9: invalid type: integer `5`, expected a string");
    let r = check(
        "db = \"x\"\ndbb = \"y\"\n",
        "2:1: unknown key `dbb` in the config file; valid keys: db, server, token_file, sync, actor, lease_ttl, grace, logs_dir, color, retry, cost",
    );
    assert!(r.stderr.contains("hint: did you mean `db`?"), "{r:?}");
    check(
        "[retry.5]\nmax_attemps = 3\n",
        "2:1: unknown key `max_attemps` in the config file; valid keys: max_attempts, backoff, transient",
    );
    check(
        "[retry.10-65]\n[retry.60-70]\n",
        "2:8: retry ranges `10-65` and `60-70` overlap; expected each state code in at most one range",
    );
    assert!(!env.db.exists(), "no store was created");

    // A file that was asked for and is not there; a bad value in the environment.
    let mut c = cmd(&env);
    c.env("BUILDSTATE_CONFIG", env.path("missing.toml"));
    let line = expect_error(&run(c, &["build", "list"]), 2, "missing file");
    assert!(line.contains("cannot read the config file") && line.contains("missing.toml"), "{line}");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_LEASE_TTL", "soon");
    let line = expect_error(&run(c, &["config", "show"]), 2, "bad env");
    assert!(
        line.starts_with("error: invalid value of BUILDSTATE_LEASE_TTL: `soon` is not a duration"),
        "{line}"
    );
}

/// A pipeline whose milestone 5 always fails with exit 75, and nothing else.
fn failing_pipeline(env: &Env) -> PathBuf {
    env.write(
        "p.yml",
        "name: conf\nmatrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}\n\
         states:\n  0: {run: \"true\"}\n  5: {run: \"echo mirror down >&2; exit 75\"}\n",
    )
}

#[test]
fn retry_policies_and_runner_settings_from_the_file_reach_run() {
    let env = Env::new().with_catalog();
    let pipeline = failing_pipeline(&env);
    let logs = env.path("configured-logs");
    let file = write(
        &env.path("bs.toml"),
        &format!(
            "logs_dir = \"{}\"\nlease_ttl = \"2m\"\ngrace = \"1s\"\n\
             [retry.0-9]\nmax_attempts = 3\nbackoff = {{ kind = \"fixed\", delay = \"10ms\" }}\n\
             transient = {{ exit_codes = [75] }}\n",
            s(&logs)
        ),
    );
    // The file's values are the runner flags' defaults, and `--help` says so.
    let mut c = cmd(&env);
    c.env("BUILDSTATE_CONFIG", &file);
    let help = ok(c, &["run", "--help"]);
    assert!(help.contains("[default: 2m]"), "{help}");
    assert!(help.contains("BUILDSTATE_LEASE_TTL"), "{help}");

    let mut c = cmd(&env);
    c.env("BUILDSTATE_CONFIG", &file);
    let r = run(c, &["run", s(&pipeline), "--json"]);
    assert_eq!(r.code, 8, "the build stops at 5: {r:?}");
    let v: Value = serde_json::from_str(&r.stdout).expect("run --json");
    let row = &v["builds"][0];
    assert_eq!((row["state"].as_u64(), row["status"].as_str()), (Some(5), Some("failed")), "{row}");
    // The pipeline says nothing of retries: the configured policy for 0-9 applies —
    // exit 75 is transient, three attempts in all (the built-in policy has no
    // transient codes, so it would have stopped after one).
    assert_eq!(row["attempts"], 4, "0 once, 5 three times: {row}");
    let number = row["build"].as_str().expect("build number");
    let show = env.json(&["build", "show", number]);
    assert_eq!(show["build"]["attempt"], 3, "{show}");
    assert_eq!(show["build"]["needs_intervention"], true, "{show}");
    let logged = walk(&logs);
    assert!(logged.len() >= 4, "attempt logs under the configured logs_dir: {logged:?}");

    // A flag still beats the file: one attempt at most, and logs elsewhere.
    let other_logs = env.path("flag-logs");
    let env2 = Env::new().with_catalog();
    let pipeline2 = failing_pipeline(&env2);
    let mut c = cmd(&env2);
    c.env("BUILDSTATE_CONFIG", &file).env("BUILDSTATE_LOGS_DIR", &other_logs);
    let r = run(c, &["run", s(&pipeline2), "--json"]);
    assert_eq!(r.code, 8, "{r:?}");
    assert!(!walk(&other_logs).is_empty(), "BUILDSTATE_LOGS_DIR beats the file");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn color_follows_the_flag_the_environment_no_color_and_the_file() {
    let env = Env::new().with_catalog();
    env.build("colour-1");
    let bold = "\x1b[1m";
    let list = |c: assert_cmd::Command| ok(c, &["build", "list"]);

    // Not a terminal: no colour by default.
    assert!(!list(cmd(&env)).contains('\x1b'));
    let mut c = cmd(&env);
    c.arg("--color=always");
    let out = list(c);
    assert!(out.starts_with(bold), "{out:?}");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_COLOR", "always");
    assert!(list(c).starts_with(bold));
    // NO_COLOR turns colour off below the flag, and BUILDSTATE_COLOR wins over it.
    let file = write(&env.path("c.toml"), "color = \"always\"\n");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_CONFIG", &file);
    assert!(list(c).starts_with(bold), "the file's colour");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_CONFIG", &file).env("NO_COLOR", "1");
    assert!(!list(c).contains('\x1b'), "NO_COLOR beats the file");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_CONFIG", &file).env("NO_COLOR", "1");
    assert_eq!(
        show(c)["settings"]["color"],
        serde_json::json!({"value": "never", "source": "env", "from": "NO_COLOR"})
    );
    let mut c = cmd(&env);
    c.env("NO_COLOR", "1").args(["--color", "always"]);
    assert!(list(c).starts_with(bold), "the flag beats NO_COLOR");
    let mut c = cmd(&env);
    c.env("BUILDSTATE_COLOR", "always").args(["--color", "never"]);
    assert!(!list(c).contains('\x1b'), "the flag beats BUILDSTATE_COLOR");
    // JSON is never coloured.
    let mut c = cmd(&env);
    c.arg("--color=always");
    let out = ok(c, &["build", "list", "--json"]);
    assert!(!out.contains('\x1b'), "{out:?}");

    let mut c = cmd(&env);
    c.env("BUILDSTATE_COLOR", "sometimes");
    expect_error(&run(c, &["build", "list"]), 2, "bad BUILDSTATE_COLOR");
}

#[test]
fn quiet_keeps_data_and_errors_and_drops_progress() {
    let env = Env::new().with_catalog();
    let pipeline = env.write(
        "ok.yml",
        "name: quiet\nmatrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}\nstates:\n  0: {run: \"true\"}\n",
    );
    let loud = ok(cmd(&env), &["run", s(&pipeline), "--new"]);
    assert!(loud.contains("attempt 1 started"), "progress without --quiet: {loud}");
    let mut c = cmd(&env);
    c.arg("--quiet");
    let quiet = ok(c, &["run", s(&pipeline), "--new"]);
    assert!(!quiet.contains("attempt 1 started"), "no progress with --quiet: {quiet}");
    assert!(quiet.contains("1 of 1 builds delivered"), "the summary stays: {quiet}");

    let mut c = cmd(&env);
    c.arg("-q");
    expect_error(&run(c, &["build", "show", "nope"]), 3, "errors stay under --quiet");
}

#[test]
fn completions_and_the_man_page_need_no_store() {
    let env = Env::new();
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef buildstate"), ("fish", "complete -c buildstate")]
    {
        let out = ok(cmd(&env), &["completions", shell]);
        assert!(out.contains(marker), "{shell}: {}", &out[..out.len().min(300)]);
        assert!(out.contains("config") && out.contains("lease-ttl"), "{shell} knows the commands and flags");
    }
    let line = expect_error(&run(cmd(&env), &["completions", "tcsh"]), 2, "unknown shell");
    assert!(line.contains("tcsh"), "{line}");

    let page = ok(cmd(&env), &["man"]);
    assert!(page.starts_with(".ie") || page.contains(".TH buildstate 1"), "{}", &page[..page.len().min(300)]);
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS", ".SH FILES", ".SH ENVIRONMENT"] {
        assert!(page.contains(section), "{section} in the man page");
    }
    assert!(page.contains("BUILDSTATE_CONFIG") && page.contains("NO_COLOR"));

    let dir = env.path("man");
    let listed = ok(cmd(&env), &["man", "--out-dir", s(&dir)]);
    for name in ["buildstate.1", "buildstate-run.1", "buildstate-config-show.1", "buildstate-build-list.1"] {
        assert!(dir.join(name).is_file(), "{name}: {listed}");
    }
    assert!(!env.db.exists(), "no store was created");
}

#[test]
fn sync_json_is_data_not_debug_text() {
    let env = Env::new().with_catalog();
    let remote = env.path("remote");
    let url = format!("file://{}", s(&remote));
    let b = env.build("rhel-9.6-base-aws-commercial-json-1");
    let c = env.build("rhel-9.6-base-aws-commercial-json-2");
    env.ok(&["--sync", &url, "state", "complete", &b, "0"]);
    env.ok(&["--sync", &url, "state", "complete", &c, "0"]);
    // Moved on locally, without a copy.
    env.ok(&["state", "complete", &c, "5"]);

    let r = env.run(&["--sync", &url, "sync", "status", "--json"]);
    assert_eq!(r.code, 5, "one build is not in sync: {r:?}");
    let v: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("sync status --json: {e}: {r:?}"));
    let rows = v.as_array().expect("an array of builds");
    let row = |n: &str| rows.iter().find(|r| r["build"] == n).unwrap_or_else(|| panic!("{n} in {v}")).clone();
    assert_eq!(row(&b)["state"], "in-sync", "{v}");
    assert_eq!(row(&c)["state"], "local-newer", "{v}");
    assert_eq!(row(&b)["provider"], "aws");
    assert!(row(&c)["local_version"].as_u64() > row(&c)["remote_version"].as_u64(), "{v}");
    assert_snake_and_kebab(&v);
    let text = env.run(&["--sync", &url, "sync", "status"]).stdout;
    assert!(text.contains("in-sync") && text.contains("local-newer"), "{text}");
    for debug in ["InSync", "LocalNewer", "RemoteNewer", "{ ", "Some("] {
        assert!(!text.contains(debug) && !r.stdout.contains(debug), "debug text {debug:?}: {text}");
    }

    let out = env.ok(&["--sync", &url, "sync", "push", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("sync push --json: {e}: {out}"));
    let pushed = v["builds"].as_array().expect("builds");
    let result = |n: &str| pushed.iter().find(|r| r["build"] == n).expect("pushed build")["result"].clone();
    assert_eq!(result(&b), "already-there", "{v}");
    assert_eq!(result(&c), "replaced", "{v}");
    assert_eq!(v["backlog"], 0);
    assert_snake_and_kebab(&v);

    let out = env.ok(&["--sync", &url, "sync", "pull", &c, "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("sync pull --json: {e}: {out}"));
    assert_eq!(v["number"], c.as_str());
    assert_eq!(v["state"], 10);
}

/// Keys are snake_case and word values kebab-case: no Rust type names leak out.
fn assert_snake_and_kebab(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                assert!(
                    k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "key {k:?}"
                );
                assert_snake_and_kebab(x);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_snake_and_kebab),
        Value::String(s) => assert!(!s.chars().next().is_some_and(char::is_uppercase), "value {s:?}"),
        _ => {}
    }
}
