//! `buildstate ansible-playbook` and the callback plugin with the real `ansible-playbook`
//! (ansible-core, installed by scripts/setup.sh): plays mapped to milestones, a failing
//! task, rescued and ignored failures, an unreachable host, and buildstate unavailable
//! in the middle of a run, replayed afterwards.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Env, Run, clean_env};

const INVENTORY: &str = "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n";

/// Fails (never skips) without Ansible, naming what installs it.
fn require_ansible() {
    let ok = Command::new("ansible-playbook").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "ansible-playbook is not on PATH: run scripts/setup.sh (install_packer_ansible) first");
}

/// A store with the test catalog and build 7, and an inventory of localhost.
fn setup() -> Env {
    require_ansible();
    let env = Env::new().with_catalog();
    env.build("7");
    std::fs::write(env.path("inventory"), INVENTORY).expect("write the inventory");
    env
}

/// What Ansible needs to stay inside the fixture.
fn ansible_vars(env: &Env) -> Vec<(String, PathBuf)> {
    vec![
        ("ANSIBLE_LOCAL_TEMP".into(), env.path("ansible-tmp")),
        ("ANSIBLE_HOME".into(), env.path("ansible-home")),
        ("XDG_DATA_HOME".into(), env.path("data")),
        ("XDG_CACHE_HOME".into(), env.path("cache")),
    ]
}

fn play(name: &str, milestone: Option<u8>, tasks: &str) -> String {
    let vars = milestone.map(|m| format!("  vars: {{buildstate_milestone: {m}}}\n")).unwrap_or_default();
    format!(
        "- name: {name}\n  hosts: localhost\n  connection: local\n  gather_facts: false\n{vars}  tasks:\n{tasks}"
    )
}

fn write_playbook(env: &Env, plays: &[String]) -> PathBuf {
    let path = env.path("site.yml");
    std::fs::write(&path, plays.join("")).expect("write the playbook");
    path
}

/// `buildstate ansible-playbook 7 -- -i inventory site.yml`.
fn wrapped(env: &Env, extra: &[&str]) -> Run {
    let mut c = env.cmd();
    c.current_dir(env.dir.path());
    for (k, v) in ansible_vars(env) {
        c.env(k, v);
    }
    let mut args = vec!["ansible-playbook", "7", "--", "-i", "inventory"];
    args.extend_from_slice(extra);
    args.push("site.yml");
    c.args(&args).output().expect("run buildstate ansible-playbook").into()
}

fn history(env: &Env) -> Vec<(String, u64)> {
    let h = env.json(&["history", "7"]);
    h.as_array()
        .expect("an array")
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or("?").to_owned(), e["state"].as_u64().unwrap_or(999)))
        .collect()
}

fn kinds_at(h: &[(String, u64)], state: u64) -> Vec<&str> {
    h.iter().filter(|(_, s)| *s == state).map(|(k, _)| k.as_str()).collect()
}

fn failures(env: &Env) -> Vec<Value> {
    env.json(&["failure", "list", "--build", "7"]).as_array().expect("an array").clone()
}

const OK_TASK: &str = "    - command: /bin/true\n";

#[test]
fn three_plays_mapped_by_vars_and_by_name_become_milestones_in_order() {
    let env = setup();
    write_playbook(
        &env,
        &[
            play("image tools", Some(10), OK_TASK),
            play("25 security baseline", None, OK_TASK),
            play("no milestone of its own", None, "    - debug: msg=part-of-25\n"),
            play("network", Some(40), OK_TASK),
        ],
    );
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    // Ansible's own output passes through unchanged.
    assert!(r.stdout.contains("PLAY [25 security baseline]") && r.stdout.contains("PLAY RECAP"), "{r:?}");
    let h = history(&env);
    let order: Vec<(&str, u64)> =
        h.iter().filter(|(k, _)| k == "started" || k == "completed").map(|(k, s)| (k.as_str(), *s)).collect();
    assert_eq!(
        order,
        vec![
            ("started", 10),
            ("completed", 10),
            ("started", 25),
            ("completed", 25),
            ("started", 40),
            ("completed", 40),
        ],
        "{h:?}"
    );
    assert_eq!(kinds_at(&h, 30), vec!["skipped"], "between mapped plays: skipped, {h:?}");
    // The first play is mapped to 10: 0 and 5 did not run, so they are skipped too.
    assert_eq!(kinds_at(&h, 0), vec!["created", "skipped"], "{h:?}");
    let b = env.json(&["build", "show", "7"]);
    assert_eq!(b["build"]["state"], 45, "{b}");
    assert!(failures(&env).is_empty());
}

#[test]
fn a_failing_task_is_an_ansible_failure_naming_task_host_and_message() {
    let env = setup();
    // Coloured, as a module's stderr often is: the record keeps the words, not the escapes.
    let failing =
        "    - name: install the agent\n      shell: printf '\\033[31magent-missing\\033[0m' >&2; exit 3\n";
    write_playbook(&env, &[play("packages", Some(10), OK_TASK), play("agent", Some(15), failing)]);
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 2, "ansible-playbook's own exit code: {r:?}");
    let h = history(&env);
    assert_eq!(kinds_at(&h, 10), vec!["started", "completed"], "{h:?}");
    assert_eq!(kinds_at(&h, 15), vec!["started", "failed"], "{h:?}");
    let f = failures(&env);
    assert_eq!(f.len(), 1, "one failure, not one more from the exit code: {f:?}");
    let f = &f[0];
    assert_eq!(f["type"], "ansible", "{f}");
    assert_eq!(f["class"], "persistent", "{f}");
    assert_eq!(f["message"], "TASK [install the agent] on localhost: non-zero return code", "{f}");
    assert_eq!(f["details"]["host"], "localhost", "{f}");
    assert_eq!(f["details"]["play"], "agent", "{f}");
    assert_eq!(f["details"]["playbook"], "site.yml", "{f}");
    let tail = f["details"]["stderr_tail"].as_str().unwrap_or_default();
    assert!(tail.contains("agent-missing") && !tail.contains('\u{1b}') && !tail.contains("[31m"), "{f}");
    assert_eq!(f["exit_code"], 2, "Ansible's code for a failed host, not a dash: {f}");
    assert!(f["details"]["at"].as_str().is_some_and(|t| t.starts_with("20")), "when it happened: {f}");
    assert!(f["component"].as_str().is_some_and(|c| c.contains("shell")), "{f}");
    assert_eq!(env.json(&["build", "show", "7"])["build"]["status"], "failed");
}

#[test]
fn rescued_and_ignored_failures_are_counted_and_the_milestone_completes() {
    let env = setup();
    let tasks = "    - block:\n        - command: /bin/false\n      rescue:\n        - debug: msg=rescued\n    \
                 - command: /bin/false\n      ignore_errors: true\n";
    write_playbook(&env, &[play("25 hardening", None, tasks)]);
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("rescued=1") && r.stdout.contains("ignored=1"), "{r:?}");
    let h = history(&env);
    assert_eq!(kinds_at(&h, 25), vec!["started", "completed"], "{h:?}");
    assert!(failures(&env).is_empty(), "rescued and ignored failures are not failures");
    let meta = env.json(&["meta", "list", "7"]);
    assert_eq!(meta["ansible.25.rescued"], "1", "{meta}");
    assert_eq!(meta["ansible.25.ignored"], "1", "{meta}");
    assert_eq!(meta["ansible.rescued"], "1", "{meta}");
    assert_eq!(meta["ansible.ignored"], "1", "{meta}");
}

#[test]
fn an_unreachable_host_is_a_transient_network_failure() {
    let env = setup();
    let inventory = format!(
        "{INVENTORY}bogus ansible_connection=ssh ansible_host=192.0.2.1 ansible_user=nobody \
         ansible_ssh_common_args='-o ConnectTimeout=2 -o StrictHostKeyChecking=no' ansible_timeout=3\n"
    );
    std::fs::write(env.path("inventory"), inventory).expect("write the inventory");
    let plays = "- name: 20 cloud setup\n  hosts: bogus\n  gather_facts: false\n  tasks:\n    - name: ping it\n      ping:\n";
    std::fs::write(env.path("site.yml"), plays).expect("write the playbook");
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 4, "ansible-playbook exits 4 for an unreachable host: {r:?}");
    let f = failures(&env);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["type"], "network", "{}", f[0]);
    assert_eq!(f[0]["class"], "transient", "{}", f[0]);
    assert_eq!(f[0]["details"]["host"], "bogus", "{}", f[0]);
    assert!(f[0]["message"].as_str().is_some_and(|m| m.starts_with("host bogus unreachable")), "{}", f[0]);
    assert_eq!(kinds_at(&history(&env), 20), vec!["started", "failed"]);
}

/// The plugin on its own (no wrapper): the store vanishes after the first play, the
/// playbook still succeeds with one warning, and `ansible replay` records the rest once.
#[test]
fn buildstate_unavailable_mid_run_warns_once_and_replay_records_everything_once() {
    require_ansible();
    let mut env = Env::new();
    std::fs::create_dir(env.path("store")).expect("a store directory");
    env.db = env.path("store/buildstate.db");
    let env = env.with_catalog();
    env.build("7");
    std::fs::write(env.path("inventory"), INVENTORY).expect("write the inventory");
    let store = env.path("store");
    let away = env.path("store-away");
    let vanish = format!("    - command: mv {} {}\n", store.display(), away.display());
    write_playbook(
        &env,
        &[
            play("packages", Some(10), &vanish),
            play("25 security baseline", None, OK_TASK),
            play("network", Some(40), OK_TASK),
        ],
    );
    let dir = env.ok(&["ansible", "callback-dir", "--dir", env.path("plugins").to_str().expect("utf-8")]);
    let spool = env.path("spool.jsonl");
    let mut c = Command::new("ansible-playbook");
    c.env_clear().envs(clean_env(std::env::vars_os()));
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    c.current_dir(env.dir.path())
        .env("ANSIBLE_CALLBACK_PLUGINS", dir.trim())
        .env("ANSIBLE_CALLBACKS_ENABLED", "buildstate")
        .env("BUILDSTATE_BUILD", "7")
        .env("BUILDSTATE_BIN", crate::common::bin())
        .env("BUILDSTATE_DB", &env.db)
        .env("BUILDSTATE_ACTOR", "tester")
        .env("BUILDSTATE_ANSIBLE_SPOOL", &spool)
        .args(["-i", "inventory", "site.yml"]);
    let r: Run = c.output().expect("run ansible-playbook").into();
    assert_eq!(r.code, 0, "the playbook's result is unchanged: {r:?}");
    // Ansible wraps warnings at the terminal's width.
    let all = format!("{}{}", r.stdout, r.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(all.matches("buildstate is unavailable").count(), 1, "one warning: {r:?}");
    assert!(all.contains(&format!("buildstate ansible replay {}", spool.display())), "{r:?}");

    std::fs::rename(&away, &store).expect("the store comes back");
    let before = history(&env);
    assert_eq!(kinds_at(&before, 10), vec!["started"], "recorded before the store went: {before:?}");
    let replayed = env.run(&["ansible", "replay", spool.to_str().expect("utf-8")]);
    assert_eq!(replayed.code, 0, "{replayed:?}");
    let h = history(&env);
    for code in [10, 25, 40] {
        assert_eq!(kinds_at(&h, code), vec!["started", "completed"], "milestone {code}: {h:?}");
    }
    // Twice is once: the cursor beside the spool holds what was recorded.
    let again = env.run(&["ansible", "replay", spool.to_str().expect("utf-8"), "7"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("recorded 0 event(s)"), "{again:?}");
    assert_eq!(history(&env), h);

    // From a hostile review: without its cursor (copied to another machine, removed),
    // the build's own record of how far the spool went keeps it from being recorded
    // again; a damaged cursor is refused, not read as 0.
    let cursor = env.path("spool.jsonl.done");
    std::fs::remove_file(&cursor).expect("remove the cursor");
    let lost = env.run(&["ansible", "replay", spool.to_str().expect("utf-8")]);
    assert!(lost.code == 0 && lost.stderr.contains("recorded 0 event(s)"), "{lost:?}");
    assert_eq!(history(&env), h);
    std::fs::write(&cursor, "abc").expect("damage the cursor");
    let damaged = env.run(&["ansible", "replay", spool.to_str().expect("utf-8")]);
    assert_eq!(damaged.code, 7, "{damaged:?}");
    assert!(damaged.stderr.contains("is damaged"), "{damaged:?}");
    assert_eq!(history(&env), h);
}

#[test]
fn callback_dir_is_idempotent_and_the_plugin_without_a_build_warns_and_records_nothing() {
    let env = setup();
    let dir = env.path("plugins");
    let first = env.run(&["ansible", "callback-dir", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.stdout.trim(), dir.to_str().expect("utf-8"));
    assert!(first.stderr.contains("ANSIBLE_CALLBACKS_ENABLED=buildstate"), "{first:?}");
    let plugin = dir.join("buildstate.py");
    let written = std::fs::metadata(&plugin).and_then(|m| m.modified()).expect("the plugin");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = env.run(&["ansible", "callback-dir", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(second.stdout, first.stdout);
    assert_eq!(
        std::fs::metadata(&plugin).and_then(|m| m.modified()).expect("the plugin"),
        written,
        "not rewritten"
    );

    // The default directory is versioned and needs no store.
    let mut c = crate::common::bare_cmd();
    c.env("XDG_DATA_HOME", env.path("data")).env("BUILDSTATE_DB", env.path("nowhere/none.db"));
    let out = c.args(["ansible", "callback-dir"]).output().expect("run");
    assert!(out.status.success(), "{out:?}");
    let default = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(Path::new(&default).join("buildstate.py").is_file(), "{default}");
    assert!(
        default.starts_with(env.path("data").join("buildstate/ansible").to_str().expect("utf-8")),
        "{default}"
    );

    write_playbook(&env, &[play("10 tools", None, OK_TASK)]);
    let before = env.export("7");
    let mut c = Command::new("ansible-playbook");
    c.env_clear().envs(clean_env(std::env::vars_os()));
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    c.current_dir(env.dir.path())
        .env("ANSIBLE_CALLBACK_PLUGINS", &dir)
        .env("ANSIBLE_CALLBACKS_ENABLED", "buildstate")
        .env("BUILDSTATE_DB", &env.db)
        .args(["-i", "inventory", "site.yml"]);
    let r: Run = c.output().expect("run ansible-playbook").into();
    assert_eq!(r.code, 0, "{r:?}");
    let all = format!("{}{}", r.stdout, r.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(all.matches("BUILDSTATE_BUILD is not set").count(), 1, "{r:?}");
    assert_eq!(env.export("7"), before, "nothing recorded");
}

#[test]
fn an_unknown_build_or_a_finished_one_is_refused_before_ansible_runs() {
    let env = setup();
    write_playbook(&env, &[play("10 tools", None, OK_TASK)]);
    let err = env.fails(&["ansible-playbook", "99", "--", "site.yml"], 3);
    assert!(err.contains("99"), "{err}");
    env.ok(&["build", "cancel", "7", "--reason", "test"]);
    let err = env.fails_unchanged("7", &["ansible-playbook", "7", "--", "site.yml"], 4);
    assert!(err.contains("cancelled"), "{err}");
}

/// As a pipeline step (a step report named, the runner's lease token inherited — here
/// `buildstate exec` plays the runner): the failure's details go to the step report for
/// the runner to record, and nothing is recorded behind the runner's back.
#[test]
fn as_a_pipeline_step_the_failure_goes_to_the_step_report() {
    let env = setup();
    let failing = "    - name: break it\n      command: /bin/false\n";
    write_playbook(&env, &[play("0 first", None, failing)]);
    let report = env.path("report.json");
    let kept = env.path("kept.json");
    let script = format!(
        "BUILDSTATE_STEP_REPORT={r} {bin} ansible-playbook 7 -- -i inventory site.yml; rc=$?; cp {r} {k}; exit $rc",
        r = report.display(),
        k = kept.display(),
        bin = crate::common::bin()
    );
    let mut c = env.cmd();
    c.current_dir(env.dir.path());
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    let r: Run = c.args(["exec", "7", "0", "--", "sh", "-c", &script]).output().expect("run").into();
    assert_eq!(r.code, 2, "{r:?}");
    let report: Value = serde_json::from_slice(&std::fs::read(&kept).expect("a step report")).expect("json");
    assert_eq!(report["failure"]["type"], "ansible", "{report}");
    assert_eq!(
        report["failure"]["message"], "TASK [break it] on localhost: non-zero return code",
        "{report}"
    );
    // The one failure recorded is the runner's (here exec's, from the exit code).
    let f = failures(&env);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["exit_code"], 2, "{}", f[0]);
    assert_eq!(kinds_at(&history(&env), 0), vec!["created", "started", "failed"]);
}

/// A pipeline's `ansible:` step: the plays move the build through 25, 30 and 35; a task
/// failing at 30 is recorded there by the runner with Ansible's detail, and the next run
/// resumes by running the step again: 25 is not recorded again.
#[test]
fn a_pipeline_ansible_step_moves_through_its_plays_and_resumes_at_the_failed_one() {
    require_ansible();
    let env = Env::new().with_catalog();
    std::fs::write(env.path("inventory"), INVENTORY).expect("write the inventory");
    let fail = "    - command: /bin/sh -c 'test ! -e fail-30 || { echo broken >&2; exit 4; }'\n      name: check marker\n";
    write_playbook(
        &env,
        &[
            play("base", Some(25), OK_TASK),
            play("30 hardening", None, fail),
            play("agents", Some(35), OK_TASK),
        ],
    );
    std::fs::write(env.path("fail-30"), "").expect("a marker");
    let pipeline = "name: an\nmatrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}\n\
                    defaults: {retry: {max_attempts: 1}}\n\
                    states:\n  20: {run: \"true\"}\n  25: {ansible: {playbook: site.yml, args: [-i, inventory]}}\n\
                    \x20 45: {run: \"true\"}\n";
    std::fs::write(env.path("an.yml"), pipeline).expect("write the pipeline");
    let run = |env: &Env| -> Run {
        let mut c = env.cmd();
        c.current_dir(env.dir.path());
        for (k, v) in ansible_vars(env) {
            c.env(k, v);
        }
        c.args(["run", "an.yml"]).output().expect("run").into()
    };
    let r = run(&env);
    assert_eq!(r.code, 8, "{r:?}");
    // The milestones the step passed are in the run's progress, not only the history.
    assert!(
        r.stdout.lines().any(|l| l.contains(" 25 security-baseline") && l.contains("completed")),
        "{}",
        r.stdout
    );
    let b = env.json(&["build", "list"])[0]["number"].as_str().expect("a build").to_owned();
    let build = env.show(&b);
    assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(30), Some("failed")), "{build}");
    let f = &env.failures(&b)[0];
    assert_eq!(f["type"], "ansible", "{f:#}");
    let message = f["message"].as_str().unwrap_or("");
    assert!(message.contains("check marker") && message.contains("localhost"), "{f:#}");

    std::fs::remove_file(env.path("fail-30")).expect("remove the marker");
    let before = env.history(&b).len();
    let r = run(&env);
    assert_eq!(r.code, 0, "{r:?}");
    let again: Vec<(String, u64)> = env.history(&b)[before..]
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or("?").to_owned(), e["state"].as_u64().unwrap_or(999)))
        .filter(|(k, _)| k != "retried")
        .collect();
    let want: Vec<(String, u64)> =
        [("started", 30), ("completed", 30), ("started", 35), ("completed", 35), ("skipped", 40)]
            .iter()
            .map(|(k, s)| ((*k).to_owned(), *s))
            .collect();
    assert_eq!(again[..5], want[..], "{again:?}");
    assert_eq!(env.show(&b)["status"], "completed");
}

/// Hostile review: a syntax check or a listing runs no play, so it records nothing.
#[test]
fn syntax_checks_and_listings_record_nothing() {
    let env = setup();
    write_playbook(&env, &[play("25 base", None, OK_TASK)]);
    for flag in ["--syntax-check", "--list-tasks", "--list-hosts"] {
        let r = wrapped(&env, &[flag]);
        assert_eq!(r.code, 0, "{flag}: {r:?}");
    }
    let h = history(&env);
    assert!(h.iter().all(|(k, _)| k == "created"), "nothing but the creation: {h:?}");
}

/// Hostile review: a FIFO is not a spool (it would block for ever), and a damaged line
/// in the middle of a spool is said out loud and passed over, not the end of it.
#[test]
fn replay_refuses_what_is_not_a_spool_and_passes_over_a_damaged_line() {
    let env = setup();
    let fifo = env.path("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let r = env.run(&["ansible", "replay", fifo.to_str().expect("utf-8"), "7"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not a regular file"), "{r:?}");

    // A real run's spool, then the same events with a damaged line after the first two,
    // replayed into a fresh store with the same build.
    write_playbook(&env, &[play("15 base", None, OK_TASK), play("25 more", None, OK_TASK)]);
    let spool = env.path("spool.jsonl");
    let mut c = env.cmd();
    c.current_dir(env.dir.path()).env("BUILDSTATE_ANSIBLE_SPOOL", &spool);
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    let r: Run =
        c.args(["ansible-playbook", "7", "--", "-i", "inventory", "site.yml"]).output().expect("run").into();
    assert_eq!(r.code, 0, "{r:?}");
    let text = std::fs::read_to_string(&spool).expect("the spool");
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 3, "{text}");
    lines.insert(2, "{\"garbage\": ");
    let other = Env::new().with_catalog();
    other.build("7");
    let damaged = other.path("damaged.jsonl");
    std::fs::write(&damaged, lines.join("\n") + "\n").expect("write");
    // Not into another build than the one the spool names.
    other.build("8");
    let r = other.run(&["ansible", "replay", damaged.to_str().expect("utf-8"), "8"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("was written for build 7, not 8"), "{r:?}");
    assert!(other.history("8").iter().all(|e| e["kind"] == "created"), "nothing recorded on 8");
    let r = other.run(&["ansible", "replay", damaged.to_str().expect("utf-8"), "7"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("line 3 of the spool"), "{r:?}");
    let h = other.history("7");
    assert!(h.iter().any(|e| e["kind"] == "completed" && e["state"] == 25), "events after the damage: {h:?}");
}

/// Hostile review: running a playbook again whose plays are all behind the build's
/// milestone records nothing — it completed the build's next milestone on every run.
#[test]
fn a_rerun_behind_the_build_records_nothing() {
    let env = setup();
    write_playbook(&env, &[play("15 base", None, OK_TASK), play("25 more", None, OK_TASK)]);
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let before = history(&env);
    for _ in 0..2 {
        let r = wrapped(&env, &[]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    assert_eq!(history(&env), before, "a re-run of done plays changes nothing");
}

/// Hostile review: a transient failure retried by the runner must fail again when the
/// task fails again — the retry's re-run of earlier plays completed the failed milestone.
#[test]
fn a_retried_ansible_step_that_fails_again_stays_failed() {
    require_ansible();
    let env = Env::new().with_catalog();
    std::fs::write(env.path("inventory"), INVENTORY).expect("write the inventory");
    let fail = "    - shell: \"echo 'curl: (6) Could not resolve host: mirror' >&2; exit 6\"\n";
    write_playbook(&env, &[play("15 base", None, OK_TASK), play("20 mirror", None, fail)]);
    let pipeline = "name: tr\nmatrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}\n\
                    states:\n  15:\n    ansible: {playbook: site.yml, args: [-i, inventory]}\n\
                    \x20   retry: {max_attempts: 2, backoff: {kind: none}, transient: {output_patterns: [\"Could not resolve host\"]}}\n\
                    \x20 30: {run: \"echo thirty\"}\n";
    std::fs::write(env.path("tr.yml"), pipeline).expect("write the pipeline");
    let mut c = env.cmd();
    c.current_dir(env.dir.path());
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    let r: Run = c.args(["run", "tr.yml"]).output().expect("run").into();
    assert_eq!(r.code, 8, "{r:?}");
    let b = env.json(&["build", "list"])[0]["number"].as_str().expect("a build").to_owned();
    let build = env.show(&b);
    assert_eq!((build["state"].as_u64(), build["status"].as_str()), (Some(20), Some("failed")), "{build}");
    let h = env.history(&b);
    let at_20: Vec<&str> = h.iter().filter(|e| e["state"] == 20).filter_map(|e| e["kind"].as_str()).collect();
    assert!(!at_20.contains(&"completed"), "{at_20:?}");
    assert_eq!(at_20.iter().filter(|k| **k == "failed").count(), 2, "{at_20:?}");
}

/// Hostile review: a play mapped past the pipeline's next step would skip that step; it
/// is warned about and counts as part of the milestone before it, so step 30 still runs.
#[test]
fn a_play_past_the_next_step_does_not_skip_it() {
    require_ansible();
    let env = Env::new().with_catalog();
    std::fs::write(env.path("inventory"), INVENTORY).expect("write the inventory");
    write_playbook(&env, &[play("15 base", None, OK_TASK), play("50 way beyond the step", None, OK_TASK)]);
    let pipeline = "name: ov\nmatrix: {platform: [aws-commercial], os: [rhel-9.6], image: [base]}\n\
                    states:\n  15: {ansible: {playbook: site.yml, args: [-i, inventory]}}\n\
                    \x20 30: {run: \"echo thirty > thirty.txt\"}\n";
    std::fs::write(env.path("ov.yml"), pipeline).expect("write the pipeline");
    let mut c = env.cmd();
    c.current_dir(env.dir.path());
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    let r: Run = c.args(["run", "ov.yml"]).output().expect("run").into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(env.path("thirty.txt").exists(), "step 30 ran: {r:?}");
    let b = env.json(&["build", "list"])[0]["number"].as_str().expect("a build").to_owned();
    let h = env.history(&b);
    assert!(h.iter().any(|e| e["kind"] == "completed" && e["state"] == 30), "{h:?}");
    let log = env.run(&["logs", &b, "--state", "15"]);
    assert!(log.stdout.contains("the pipeline's next step"), "the warning is in the step's log: {log:?}");
}

/// `ansible-playbook` with the plugin on its own (no wrapper), as a project enables it.
fn standalone(env: &Env, build: &str, spool: Option<&Path>, args: &[&str]) -> Command {
    let dir = env.path("plugins");
    env.ok(&["ansible", "callback-dir", "--dir", dir.to_str().expect("utf-8")]);
    let mut c = Command::new("ansible-playbook");
    c.env_clear().envs(clean_env(std::env::vars_os()));
    for (k, v) in ansible_vars(env) {
        c.env(k, v);
    }
    c.current_dir(env.dir.path())
        .env("ANSIBLE_CALLBACK_PLUGINS", &dir)
        .env("ANSIBLE_CALLBACKS_ENABLED", "buildstate")
        .env("BUILDSTATE_BUILD", build)
        .env("BUILDSTATE_BIN", crate::common::bin())
        .env("BUILDSTATE_DB", &env.db)
        .args(["-i", "inventory"])
        .args(args);
    if let Some(spool) = spool {
        c.env("BUILDSTATE_ANSIBLE_SPOOL", spool);
    }
    c
}

fn one_line(r: &Run) -> String {
    // Ansible wraps warnings at the terminal's width.
    format!("{}{}", r.stdout, r.stderr).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// From a hostile review: the wrapper enables the plugin through the environment, which
/// in Ansible overrides ansible.cfg, so a project's own callback directory (and the
/// stdout callback in it) and its enabled callbacks were dropped.
#[test]
fn the_projects_ansible_cfg_callbacks_stay_enabled_beside_buildstate() {
    let env = setup();
    std::fs::create_dir(env.path("cb")).expect("a plugin directory");
    let callback = |name: &str, kind: &str, text: &str| {
        format!(
            "from ansible.plugins.callback import CallbackBase\n\
             class CallbackModule(CallbackBase):\n    CALLBACK_VERSION = 2.0\n    CALLBACK_TYPE = '{kind}'\n    \
             CALLBACK_NAME = '{name}'\n    CALLBACK_NEEDS_ENABLED = {needs}\n    \
             def v2_playbook_on_play_start(self, play):\n        self._display.display('{text} ' + play.get_name())\n",
            needs = if kind == "stdout" { "False" } else { "True" }
        )
    };
    std::fs::write(env.path("cb/marker.py"), callback("marker", "stdout", "MARKER-STDOUT")).expect("write");
    std::fs::write(env.path("cb/noted.py"), callback("noted", "notification", "NOTED-TOO")).expect("write");
    std::fs::write(
        env.path("ansible.cfg"),
        "[defaults]\ncallback_plugins = ./cb\nstdout_callback = marker\ncallbacks_enabled = noted\n",
    )
    .expect("write ansible.cfg");
    write_playbook(&env, &[play("10 tools", None, OK_TASK)]);
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("MARKER-STDOUT 10 tools"), "the project's stdout callback: {r:?}");
    assert!(r.stdout.contains("NOTED-TOO 10 tools"), "the project's enabled callback: {r:?}");
    assert_eq!(kinds_at(&history(&env), 10), vec!["started", "completed"], "and buildstate's");

    // Nothing configured: Ansible's own directory ($ANSIBLE_HOME/plugins/callback) still
    // holds the stdout callback.
    let own = env.path("ansible-home/plugins/callback");
    std::fs::create_dir_all(&own).expect("a plugin directory");
    std::fs::write(own.join("homeout.py"), callback("homeout", "stdout", "HOMEOUT")).expect("write");
    std::fs::write(env.path("ansible.cfg"), "[defaults]\nstdout_callback = homeout\n")
        .expect("write ansible.cfg");
    write_playbook(&env, &[play("15 more", None, OK_TASK)]);
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("HOMEOUT 15 more"), "Ansible's default directory kept: {r:?}");
}

/// From a hostile review: a templated `buildstate_milestone` or one given with `-e` was
/// ignored without a word, and a malformed one too.
#[test]
fn the_milestone_variable_is_read_as_ansible_sees_it_and_a_bad_one_is_said() {
    let env = setup();
    let plays = "- name: tools\n  hosts: localhost\n  gather_facts: false\n  \
                 vars: {ms: 10, buildstate_milestone: '{{ ms }}'}\n  tasks:\n    - command: /bin/true\n\
                 - name: more tools\n  hosts: localhost\n  gather_facts: false\n  \
                 vars: {buildstate_milestone: soon}\n  tasks:\n    - command: /bin/true\n";
    std::fs::write(env.path("site.yml"), plays).expect("write the playbook");
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let said = one_line(&r);
    assert!(
        said.contains("play \"more tools\" has buildstate_milestone 'soon', which is not a milestone"),
        "{r:?}"
    );
    let h = history(&env);
    assert_eq!(kinds_at(&h, 10), vec!["started", "completed"], "templated: {h:?}");

    // `-e` wins over the play's own, as in Ansible.
    let r = wrapped(&env, &["-e", "buildstate_milestone=15"]);
    assert_eq!(r.code, 0, "{r:?}");
    let h = history(&env);
    assert_eq!(kinds_at(&h, 15), vec!["started", "completed"], "{h:?}");

    // A name's code is followed by a space, a colon or nothing; one past 100 is said.
    write_playbook(
        &env,
        &[
            play("1000 big", None, OK_TASK),
            play("25.5 half", None, OK_TASK),
            play("'30: net'", None, OK_TASK),
        ],
    );
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(one_line(&r).contains("play \"1000 big\" starts with 1000, which is not a milestone"), "{r:?}");
    let h = history(&env);
    assert!(kinds_at(&h, 25).iter().all(|k| *k == "skipped"), "25.5 names no milestone: {h:?}");
    assert_eq!(kinds_at(&h, 30), vec!["started", "completed"], "{h:?}");
}

/// From a hostile review: `--check` changes nothing, yet it completed milestones.
#[test]
fn check_mode_records_nothing_wrapped_or_not() {
    let env = setup();
    write_playbook(&env, &[play("10 tools", None, OK_TASK)]);
    let before = env.export("7");
    for flag in ["--check", "-vC"] {
        let r = wrapped(&env, &[flag]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("--check changes nothing"), "{r:?}");
    }
    let r: Run = standalone(&env, "7", None, &["--check", "site.yml"]).output().expect("run").into();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(one_line(&r).matches("--check changes nothing, so nothing is recorded").count(), 1, "{r:?}");
    // Part of the playbook (hostile review: `--tags` completed milestones whose tasks
    // never ran): nothing recorded either.
    for args in [&["--tags", "sec"][..], &["--start-at-task=x"][..], &["-tsec"][..]] {
        let r = wrapped(&env, args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("runs part of the playbook"), "{r:?}");
    }
    let r: Run = standalone(&env, "7", None, &["--skip-tags", "x", "site.yml"]).output().expect("run").into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(one_line(&r).contains("completes no milestone, so nothing is recorded"), "{r:?}");
    assert_eq!(env.export("7"), before, "nothing recorded");
}

/// From a hostile review: two playbooks at once with one spool numbered their events
/// alike and lost some. A spool in use is the first run's; the second writes its own,
/// and says so; with no spool given, every run has its own file.
#[test]
fn two_playbooks_at_once_never_share_a_spool() {
    let env = setup();
    env.build("8");
    let slow = "    - command: sleep 2\n";
    write_playbook(&env, &[play("10 tools", None, slow), play("15 config", None, OK_TASK)]);
    let spool = env.path("shared.jsonl");
    let spawn = |b: &str| {
        let mut c = standalone(&env, b, Some(&spool), &["site.yml"]);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        c.spawn().expect("start ansible-playbook")
    };
    let (one, two) = (spawn("7"), spawn("8"));
    let first: Run = one.wait_with_output().expect("run").into();
    let second: Run = two.wait_with_output().expect("run").into();
    assert_eq!((first.code, second.code), (0, 0), "{first:?} {second:?}");
    let warned =
        [&first, &second].iter().filter(|r| one_line(r).contains("is in use by another playbook")).count();
    assert_eq!(warned, 1, "one of them took a file of its own: {first:?} {second:?}");
    for b in ["7", "8"] {
        let h: Vec<String> = env
            .json(&["history", b])
            .as_array()
            .expect("history")
            .iter()
            .filter(|e| e["kind"] == "completed")
            .map(|e| e["state"].to_string())
            .collect();
        assert_eq!(h, vec!["10", "15"], "build {b} lost nothing");
    }

    // No spool given: a file per run under the cache directory (named after the build,
    // the time and the process), removed once all of it is recorded.
    env.build("9");
    for _ in 0..2 {
        let r: Run = standalone(&env, "9", None, &["site.yml"]).output().expect("run").into();
        assert_eq!(r.code, 0, "{r:?}");
    }
    let left: Vec<_> = std::fs::read_dir(env.path("cache/buildstate/ansible-spool"))
        .expect("the default spool directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "recorded spools are removed: {left:?}");
}

/// `ansible-playbook` holds the build's lease like `exec`: broken under a running
/// playbook, Ansible (and the task it runs) is stopped within seconds, nothing more is
/// recorded, and it exits 5.
#[test]
fn a_lease_broken_under_a_running_playbook_stops_it_and_exits_5() {
    let env = setup();
    let pid_file = env.path("task.pid");
    let task =
        format!("    - shell: echo $$ > {0}.tmp; mv {0}.tmp {0}; exec sleep 301\n", pid_file.display());
    write_playbook(&env, &[play("10 slow", None, &task)]);
    let mut c = env.std_cmd();
    c.current_dir(env.dir.path());
    for (k, v) in ansible_vars(&env) {
        c.env(k, v);
    }
    let (out, err) = (env.path("wrapper.stdout"), env.path("wrapper.stderr"));
    c.args(["ansible-playbook", "7", "--grace", "1s", "--", "-i", "inventory", "site.yml"])
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    let mut wrapper = c.spawn().expect("start the wrapper");
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(60), || pid_file.exists()),
        "the task started: {}",
        crate::common::read(&err)
    );
    let task_pid: u32 = crate::common::read(&pid_file).trim().parse().expect("a pid");
    assert_eq!(kinds_at(&history(&env), 10), vec!["started"]);
    env.ok(&["lease", "break", "7"]);
    let broke = std::time::Instant::now();
    let code = loop {
        if let Some(status) = wrapper.try_wait().expect("wait") {
            break status.code();
        }
        assert!(broke.elapsed() < std::time::Duration::from_secs(30), "the wrapper did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stderr = crate::common::read(&err);
    assert_eq!(code, Some(5), "a lost lease is a conflict: {stderr}");
    assert!(stderr.contains("lost while ansible-playbook ran"), "{stderr}");
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(10), || !crate::common::process_alive(
            task_pid,
            "sleep 301"
        )),
        "the task's process was stopped"
    );
    assert_eq!(kinds_at(&history(&env), 10), vec!["started"], "nothing more recorded");
}

/// Through `buildstate serve`: the wrapper and the plugin's `record` calls reach the
/// store only through the server's URL and token.
#[test]
fn through_a_server_plays_become_milestones_and_a_failure_is_recorded() {
    require_ansible();
    let env = Env::served().with_catalog();
    env.build("7");
    std::fs::write(env.path("inventory"), INVENTORY).expect("write the inventory");
    let failing = "    - name: seal\n      command: /bin/false\n";
    write_playbook(&env, &[play("10 tools", None, OK_TASK), play("15 seal", None, failing)]);
    let r = wrapped(&env, &[]);
    assert_eq!(r.code, 2, "{r:?}");
    let h = history(&env);
    assert_eq!(kinds_at(&h, 10), vec!["started", "completed"], "{h:?}");
    assert_eq!(kinds_at(&h, 15), vec!["started", "failed"], "{h:?}");
    let f = failures(&env);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["message"], "TASK [seal] on localhost: non-zero return code", "{}", f[0]);
}

/// From a hostile review: the plugin on its own, pointed at a cancelled build, said
/// nothing and marked its events recorded; a playbook killed midway left its attempt
/// open for the next run to complete, as if one attempt had run throughout.
#[test]
fn on_its_own_a_finished_build_is_said_and_a_killed_run_is_closed_as_abandoned() {
    let env = setup();
    env.build("8");
    env.ok(&["build", "cancel", "8", "--reason", "not needed"]);
    write_playbook(&env, &[play("10 tools", None, OK_TASK)]);
    let before = env.export("8");
    let r: Run = standalone(&env, "8", None, &["site.yml"]).output().expect("run").into();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(one_line(&r).contains("build 8 is cancelled: nothing of this playbook is recorded"), "{r:?}");
    assert!(!one_line(&r).contains("warning: build"), "no doubled prefix: {r:?}");
    assert_eq!(env.export("8"), before);

    let mark = env.path("slow.started");
    let slow = format!("    - shell: touch {}; sleep 60\n", mark.display());
    write_playbook(&env, &[play("10 tools", None, OK_TASK), play("15 slow", None, &slow)]);
    let mut c = standalone(&env, "7", None, &["site.yml"]);
    c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().expect("start ansible-playbook");
    assert!(
        crate::common::eventually(std::time::Duration::from_secs(60), || mark.exists()),
        "the slow task started"
    );
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert_eq!(kinds_at(&history(&env), 15), vec!["started"], "left open by the killed run");

    write_playbook(&env, &[play("10 tools", None, OK_TASK), play("15 slow", None, OK_TASK)]);
    let r: Run = standalone(&env, "7", None, &["site.yml"]).output().expect("run").into();
    assert_eq!(r.code, 0, "{r:?}");
    let h = env.history("7");
    let at15: Vec<(String, u64, bool)> = h
        .iter()
        .filter(|e| e["state"] == 15)
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_owned(),
                e["attempt"].as_u64().unwrap_or(0),
                e["forced"] == true,
            )
        })
        .collect();
    assert_eq!(
        at15,
        vec![
            ("started".to_owned(), 1, false),
            ("failed".to_owned(), 1, true),
            ("started".to_owned(), 2, true),
            ("completed".to_owned(), 2, false)
        ],
        "{h:#?}"
    );
}
