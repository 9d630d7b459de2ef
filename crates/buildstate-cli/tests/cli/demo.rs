//! `buildstate demo`, the main job: self-contained, and it shows what resuming saved.

use std::time::Instant;

use crate::common::bare_std_cmd;

#[test]
fn demo_fails_fixes_and_resumes_only_the_failed_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("demo");
    let home = dir.path().join("home");
    let started = Instant::now();
    let out = bare_std_cmd()
        .args(["demo", "--dir"])
        .arg(&scratch)
        // The demo must not need (or touch) the user's own store.
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .output()
        .expect("run demo");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Run 1: the transient failure was retried, the persistent one stopped its build.
    assert!(stdout.contains("Could not resolve host") && stdout.contains("retrying in"), "{stdout}");
    assert!(stdout.contains("5 of 6 builds delivered"), "{stdout}");
    // Run 2: only 45 and later ran again, and the demo says what that saved.
    assert!(stdout.contains("resumed at 45"), "{stdout}");
    assert!(stdout.contains("none was repeated"), "{stdout}");
    assert!(stdout.contains("12 of 21 milestones"), "{stdout}");
    assert!(stdout.contains("6 of 6 builds delivered"), "{stdout}");
    assert!(stdout.contains("buildstate logs "), "{stdout}");
    // The side-effect log agrees: the broken build ran 0–40 once and 45 twice.
    let effects = std::fs::read_to_string(scratch.join("side-effects.log")).expect("side effects");
    let broken: Vec<&str> = effects.lines().filter(|l| l.starts_with("ubuntu-24.04-base-gcp-")).collect();
    for code in (0..45).step_by(5) {
        let n = broken.iter().filter(|l| l.split_whitespace().nth(1) == Some(&code.to_string())).count();
        assert_eq!(n, 1, "milestone {code} of the broken build ran {n} times");
    }
    let n45 = broken.iter().filter(|l| l.split_whitespace().nth(1) == Some("45")).count();
    assert_eq!(n45, 2, "45 fails once, then runs again after the fix");
    // A second demo in the same directory starts over cleanly.
    let again =
        bare_std_cmd().args(["demo", "--dir"]).arg(&scratch).env("HOME", &home).output().expect("rerun");
    assert_eq!(again.status.code(), Some(0));
    eprintln!("demo took {took:?}");
}

#[test]
fn demo_refuses_a_directory_it_did_not_make() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("precious.txt"), "keep me").expect("write");
    let out = bare_std_cmd().args(["demo", "--dir"]).arg(dir.path()).output().expect("run demo");
    assert_eq!(out.status.code(), Some(2));
    assert!(dir.path().join("precious.txt").exists());
}
