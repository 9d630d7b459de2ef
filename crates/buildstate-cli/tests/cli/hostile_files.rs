//! Hostile review of the JSON-file store: what a person (or an attacker with write access
//! to the directory) can put in `builds/`. Nothing there may hang a command or read
//! without bound, and whatever is not a readable build document is reported as one that
//! cannot be read — exit 7, the other builds still listed — never a storage fault.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

/// A generous bound: each command here takes milliseconds; a hang would take for ever.
const PATIENCE: Duration = Duration::from_secs(60);

fn store() -> (Env, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("j");
    let env = Env::with_db(&format!("file://{}", root.display()));
    // The fixture's own temp dir holds nothing; keep this one alive through it.
    let env = Env { dir, ..env };
    env.ok(&["init", "--sample"]);
    (env, root)
}

/// Runs a command that must end on its own, and soon.
fn bounded(env: &Env, args: &[&str]) -> Run {
    env.cmd().args(args).timeout(PATIENCE).output().expect("run buildstate").into()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn numbers(env: &Env) -> Vec<String> {
    let r = bounded(env, &["build", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    listed.as_array().expect("array").iter().filter_map(|b| b["number"].as_str().map(str::to_owned)).collect()
}

/// Everything that is not a build document, side by side: each named in the one error
/// line, the sample's five builds listed, exit 7 — as for a truncated document.
#[test]
fn build_list_lists_the_readable_builds_beside_anything_else_in_builds() {
    let (env, root) = store();
    let builds = root.join("builds");
    let readable = numbers(&env);
    assert_eq!(readable.len(), 5, "{readable:?}");

    std::os::unix::fs::symlink("/dev/zero", builds.join("zz-zero-20261202-001.json")).expect("link");
    mkfifo(&builds.join("zz-fifo-20261202-001.json"));
    std::fs::write(builds.join("zz-empty-20261202-001.json"), "{}\n").expect("write");
    std::fs::write(builds.join("zz-trunc-20261202-001.json"), "[1,2").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", builds.join("zz-passwd-20261202-001.json")).expect("link");
    std::fs::create_dir(builds.join("x.json")).expect("mkdir");
    // Sparse: 100 MiB on paper, nothing on disk; refused by its size, not read.
    let big = std::fs::File::create(builds.join("zz-big-20261202-001.json")).expect("create");
    big.set_len(100 << 20).expect("grow");
    let odd = ["zz-zero", "zz-fifo", "zz-empty", "zz-trunc", "zz-passwd", "x.json", "zz-big"];

    let r = bounded(&env, &["build", "list"]);
    assert_eq!(r.code, 7, "{r:?}");
    for n in &readable {
        assert!(r.stdout.contains(n.as_str()), "{n} listed: {r:?}");
    }
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and its hint: {r:?}");
    assert!(lines[0].starts_with("error: 7 build documents in file://"), "{r:?}");
    for name in odd {
        assert!(lines[0].contains(name), "names {name}: {r:?}");
    }
    assert!(lines[0].contains("not a regular file") && lines[0].contains("64 MiB"), "says why: {r:?}");
    assert!(!r.stderr.contains("storage error"), "not a store fault: {r:?}");

    let mut sorted = readable.clone();
    sorted.sort();
    let mut again = numbers(&env);
    again.sort();
    assert_eq!(again, sorted, "`--json` lists the same builds");
}

/// A FIFO, or a link to /dev/zero, under the name of an existing build: every command
/// on that build ends at once with exit 7 naming the file; the others are unaffected.
#[test]
fn a_build_whose_file_became_a_fifo_or_a_link_is_a_bad_document() {
    let (env, root) = store();
    let all = numbers(&env);
    let (victim, other) = (&all[0], &all[1]);
    let file = root.join("builds").join(format!("{victim}.json"));
    let saved = read(&file);

    for replace in ["fifo", "zero"] {
        std::fs::remove_file(&file).expect("remove");
        match replace {
            "fifo" => mkfifo(&file),
            _ => std::os::unix::fs::symlink("/dev/zero", &file).expect("link"),
        }
        for args in [
            vec!["build", "show", victim.as_str()],
            vec!["export", victim.as_str()],
            vec!["state", "start", victim.as_str(), "5"],
        ] {
            let r = bounded(&env, &args);
            assert_eq!(r.code, 7, "{replace}: {args:?}: {r:?}");
            assert!(r.stderr.contains(&file.display().to_string()), "names the file: {r:?}");
        }
        let r = bounded(&env, &["build", "list"]);
        assert_eq!(r.code, 7, "{replace}: {r:?}");
        assert!(r.stdout.contains(other.as_str()) && !r.stdout.contains(victim.as_str()), "{r:?}");
        assert_eq!(bounded(&env, &["build", "show", other.as_str()]).code, 0, "the others are unaffected");
    }

    std::fs::remove_file(&file).expect("remove");
    std::fs::write(&file, saved).expect("restore");
    assert_eq!(numbers(&env).len(), all.len(), "restored, the list is whole");
}

/// A build's file edited by hand into garbage is a corrupt document (exit 7), for
/// `build show` as for `build list`, not an internal error.
#[test]
fn build_show_of_a_garbage_document_is_exit_7() {
    let (env, root) = store();
    let all = numbers(&env);
    let file = root.join("builds").join(format!("{}.json", all[0]));
    std::fs::write(&file, "garbage, not JSON\n").expect("edit");
    let r = bounded(&env, &["build", "show", &all[0]]);
    assert_eq!(r.code, 7, "{r:?}");
    assert!(r.stderr.contains(&file.display().to_string()) && !r.stderr.contains("storage error"), "{r:?}");
    std::fs::write(&file, "{}").expect("edit");
    let r = bounded(&env, &["build", "show", &all[0]]);
    assert_eq!(r.code, 7, "{r:?}");
}

/// A report or a prune over a store with a damaged document is exit 7 naming it, as
/// `build list` is (a hostile review got exit 1, "storage error").
#[test]
fn reports_and_prune_over_a_damaged_document_are_exit_7() {
    let (env, root) = store();
    let victim = numbers(&env).pop().expect("a sample build");
    let path = root.join("builds").join(format!("{victim}.json"));
    let text = std::fs::read_to_string(&path).expect("read the document");
    std::fs::write(&path, &text[..text.len() / 2]).expect("cut it in half");
    for args in [&["report", "overview"][..], &["prune", "--completed-before", "2000-01-01", "--dry-run"]] {
        let r = bounded(&env, args);
        assert_eq!(r.code, 7, "{args:?}: {r:?}");
        assert!(r.stderr.contains(&victim), "{args:?} names the document: {}", r.stderr);
    }
}
