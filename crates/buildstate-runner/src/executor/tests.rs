//! The executor against real processes.
//!
//! Time bounds are generous on purpose (2 noisy cores): they catch a hang or a missed
//! kill, not a slow machine.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::sync::watch;

use super::*;

const SLACK: Duration = Duration::from_secs(3);

struct Step {
    program: Program,
    workdir: PathBuf,
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    log: PathBuf,
    output: OutputMode,
    grace: Duration,
}

impl Step {
    fn new(dir: &TempDir, program: Program) -> Step {
        Step {
            program,
            workdir: dir.path().to_owned(),
            env: BTreeMap::new(),
            timeout: None,
            log: dir.path().join("logs/step.log"),
            output: OutputMode::Capture,
            grace: Duration::from_secs(1),
        }
    }

    fn shell(dir: &TempDir, line: &str) -> Step {
        Step::new(dir, Program::Shell(line.to_owned()))
    }

    fn request(&self) -> StepRequest<'_> {
        StepRequest {
            program: &self.program,
            workdir: &self.workdir,
            env: &self.env,
            timeout: self.timeout,
            log: &self.log,
            output: self.output,
            grace: self.grace,
        }
    }

    /// Runs with a `stop` that never fires (its sender is dropped at once).
    async fn run(&self) -> StepResult {
        let (_, stop) = watch::channel(None);
        run_step(self.request(), stop).await
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).expect("read log")).into_owned()
    }
}

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Waits for a test script to write a pid to `path`.
async fn pid_in(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Dead or a zombie (PID 1 of a container may never reap orphans).
fn is_dead(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}

/// Asserts that `pid` dies soon (signals are delivered asynchronously); kills it if not,
/// so a failing test leaves nothing behind.
async fn assert_dies(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(pid) {
        if Instant::now() > deadline {
            kill(Pid::from_raw(pid), Signal::SIGKILL).ok();
            panic!("process {pid} is still alive");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn exit_codes() {
    let dir = tempdir();
    let ok = Step::shell(&dir, "exit 0").run().await;
    assert_eq!(ok.end, StepEnd::Exited(0));
    assert!(ok.success());
    assert_eq!(ok.exit_code(), Some(0));

    let failed = Step::shell(&dir, "echo failing; exit 3").run().await;
    assert_eq!(failed.end, StepEnd::Exited(3));
    assert!(!failed.success());
    assert_eq!(failed.exit_code(), Some(3));
    assert_eq!(failed.tail, "failing\n");
    assert_eq!(failed.log, dir.path().join("logs/step.log"));
    assert_eq!(failed.end.to_string(), "exited with code 3");
}

#[tokio::test]
async fn killed_by_a_signal_we_did_not_send() {
    let dir = tempdir();
    let result = Step::shell(&dir, "kill -KILL $$").run().await;
    assert_eq!(result.end, StepEnd::Signaled(9));
    assert_eq!(result.exit_code(), None);
    assert_eq!(result.end.to_string(), "killed by SIGKILL");
}

#[tokio::test]
async fn a_missing_program_fails_to_spawn_with_a_useful_message() {
    let dir = tempdir();
    let step = Step::new(&dir, Program::Argv(vec!["buildstate-no-such-program".to_owned()]));
    let result = step.run().await;
    let StepEnd::SpawnFailed(message) = &result.end else {
        panic!("{:?}", result.end);
    };
    assert_eq!(
        message,
        "program `buildstate-no-such-program` not found on PATH; install it or give its full path"
    );
    assert!(result.tail.contains(message.as_str()));
    assert!(step.log_text().contains(message.as_str()), "the log says why too");

    let step = Step::new(&dir, Program::Argv(vec!["./nope".to_owned()]));
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.contains("/nope does not exist"), "{message}");

    let step = Step::new(&dir, Program::Argv(Vec::new()));
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.contains("argv is empty"), "{message}");
}

#[tokio::test]
async fn a_missing_workdir_fails_to_spawn() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "true");
    step.workdir = dir.path().join("missing");
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.contains("missing does not exist"), "{message}");
    assert!(message.contains("workdir"), "{message}");
}

#[tokio::test]
async fn scripts_run_from_the_workdir_and_must_be_executable() {
    let dir = tempdir();
    let script = dir.path().join("build.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"script ran with $#\"\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let step = Step::new(&dir, Program::Script(PathBuf::from("build.sh")));
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.ends_with("build.sh is not executable; chmod +x it"), "{message}");

    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    assert_eq!(result.tail, "script ran with 0\n");

    let step = Step::new(&dir, Program::Script(PathBuf::from("absent.sh")));
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.contains("absent.sh does not exist"), "{message}");
}

#[tokio::test]
async fn a_non_executable_argv_program_says_chmod() {
    let dir = tempdir();
    std::fs::write(dir.path().join("tool"), "#!/bin/sh\n").expect("write");
    let step = Step::new(&dir, Program::Argv(vec!["./tool".to_owned()]));
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.ends_with("chmod +x it"), "{message}");
}

#[tokio::test]
async fn shell_steps_survive_a_path_without_the_shell() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "echo \"$PATH\"");
    step.env.insert("PATH".into(), "/nonexistent".into());
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    assert_eq!(result.tail, "/nonexistent\n");
}

#[tokio::test]
async fn a_script_with_a_missing_interpreter_says_so() {
    let dir = tempdir();
    let script = dir.path().join("odd.sh");
    std::fs::write(&script, "#!/no/such/interpreter\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let step = Step::new(&dir, Program::Script(script));
    let StepEnd::SpawnFailed(message) = step.run().await.end else {
        panic!("expected a spawn failure");
    };
    assert!(message.contains("interpreter on its #! line"), "{message}");
}

#[tokio::test]
async fn argv_runs_without_a_shell() {
    let dir = tempdir();
    let step = Step::new(&dir, Program::Argv(vec!["echo".into(), "$HOME".into(), "a  b".into()]));
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    assert_eq!(result.tail, "$HOME a  b\n");
}

#[tokio::test]
async fn env_and_workdir_are_applied_and_stdin_is_empty() {
    let dir = tempdir();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    let mut step = Step::shell(
        &dir,
        "printf '%s|%s\\n' \"$BUILDSTATE_TEST_VAR\" \"$BUILDSTATE_TEST_EMPTY\"; pwd -P; test -n \"$PATH\" && echo inherited; cat; echo eof",
    );
    step.workdir = work.clone();
    step.env.insert("BUILDSTATE_TEST_VAR".into(), "a value".into());
    step.env.insert("BUILDSTATE_TEST_EMPTY".into(), String::new());
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    let work = work.canonicalize().expect("canonicalize");
    assert_eq!(result.tail, format!("a value|\n{}\ninherited\neof\n", work.display()));
}

#[tokio::test]
async fn the_log_is_created_with_its_directories_and_appended_to() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "echo first");
    step.log = dir.path().join("a/b/c/step.log");
    step.run().await;
    step.program = Program::Shell("echo second >&2".into());
    let result = step.run().await;
    assert_eq!(result.tail, "second\n", "the tail is of this run only");
    assert_eq!(step.log_text(), "first\nsecond\n");
}

#[tokio::test]
async fn an_unwritable_log_is_a_spawn_failure() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "echo ran > marker");
    std::fs::write(dir.path().join("file"), "").expect("write");
    step.log = dir.path().join("file/step.log");
    let result = step.run().await;
    let StepEnd::SpawnFailed(message) = &result.end else {
        panic!("{:?}", result.end);
    };
    assert!(message.contains("cannot create the log directory"), "{message}");
    assert!(!dir.path().join("marker").exists(), "the step did not run");
}

#[tokio::test]
async fn tail_keeps_the_last_40_of_10000_lines_and_the_log_has_all() {
    let dir = tempdir();
    let step = Step::shell(&dir, "seq 1 10000");
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    let expected_tail: String = (9961..=10000).map(|i| format!("{i}\n")).collect();
    assert_eq!(result.tail, expected_tail);
    let expected_log: String = (1..=10000).map(|i| format!("{i}\n")).collect();
    assert_eq!(step.log_text(), expected_log);
}

#[tokio::test]
async fn the_log_has_both_streams_in_arrival_order() {
    let dir = tempdir();
    let step = Step::shell(
        &dir,
        "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; sleep 0.3; echo four >&2",
    );
    let result = step.run().await;
    assert_eq!(step.log_text(), "one\ntwo\nthree\nfour\n");
    assert_eq!(result.tail, "one\ntwo\nthree\nfour\n");

    // Interleaved without pauses, each stream keeps its order and nothing is lost.
    let step = Step::shell(&dir, "for i in $(seq 1 500); do echo out $i; echo err $i >&2; done");
    step.run().await;
    let log = step.log_text();
    for prefix in ["out", "err"] {
        let seen: Vec<String> =
            log.lines().filter_map(|l| l.strip_prefix(prefix)).map(|n| n.trim().to_owned()).collect();
        let expected: Vec<String> = (1..=500).map(|i| i.to_string()).collect();
        assert_eq!(seen, expected, "{prefix}");
    }
}

#[tokio::test]
async fn large_output_keeps_memory_bounded() {
    let dir = tempdir();
    // 32 MiB without a newline, then a last line.
    let step = Step::shell(&dir, "head -c 33554432 /dev/zero | tr '\\0' x; echo; echo last");
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    assert!(result.tail.len() <= TAIL_MAX_BYTES);
    assert!(result.tail.ends_with("xxx\nlast\n"));
    let size = std::fs::metadata(&step.log).expect("log").len();
    assert_eq!(size, 33_554_432 + "\nlast\n".len() as u64);
}

#[tokio::test]
async fn a_timeout_kills_the_child_and_its_grandchildren() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "sleep 1000 & echo $! > pid; echo started; sleep 1000");
    step.timeout = Some(Duration::from_secs(2));
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::TimedOut);
    assert!(result.duration >= Duration::from_secs(2), "{:?}", result.duration);
    assert!(result.duration < Duration::from_secs(2) + step.grace + SLACK, "{:?}", result.duration);
    assert_eq!(result.tail, "started\n");
    assert_dies(pid_in(&dir.path().join("pid")).await).await;
    assert_eq!(result.end.to_string(), "timed out");
}

#[tokio::test]
async fn stop_with_sigint_interrupts_and_kills_grandchildren() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "sleep 1000 & echo $! > pid; sleep 1000");
    // A long grace: the group obeys SIGTERM, so it must not be waited out.
    step.grace = Duration::from_secs(10);
    let (tx, stop) = watch::channel(None);
    let pid_file = dir.path().join("pid");
    let (result, (stopped_at, grandchild)) = tokio::join!(run_step(step.request(), stop), async {
        let pid = pid_in(&pid_file).await;
        tx.send(Some(2)).expect("executor listens");
        (Instant::now(), pid)
    });
    assert_eq!(result.end, StepEnd::Interrupted(2));
    let took = (result.started + result.duration).saturating_duration_since(stopped_at);
    assert!(took < step.grace - Duration::from_secs(2), "{took:?}");
    assert_dies(grandchild).await;
    assert_eq!(result.end.to_string(), "interrupted by SIGINT");
}

#[tokio::test]
async fn a_group_ignoring_sigterm_is_killed_after_the_grace_period() {
    let dir = tempdir();
    let mut step = Step::shell(&dir, "trap '' TERM; sleep 1000 & echo $! > pid; while :; do sleep 0.1; done");
    step.grace = Duration::from_secs(1);
    let (tx, stop) = watch::channel(None);
    let pid_file = dir.path().join("pid");
    let (result, (stopped_at, grandchild)) = tokio::join!(run_step(step.request(), stop), async {
        let pid = pid_in(&pid_file).await;
        tx.send(Some(15)).expect("executor listens");
        (Instant::now(), pid)
    });
    assert_eq!(result.end, StepEnd::Interrupted(15));
    let took = (result.started + result.duration).saturating_duration_since(stopped_at);
    assert!(took >= Duration::from_millis(900), "waited the grace: {took:?}");
    assert!(took < step.grace + SLACK, "{took:?}");
    assert_dies(grandchild).await;
}

#[tokio::test]
async fn children_get_the_grace_period_after_the_leader_exits() {
    let dir = tempdir();
    // The shell exits on SIGTERM at once; its child ignores SIGTERM (and writes its pid
    // only once it does).
    let mut step =
        Step::shell(&dir, "(trap '' TERM; exec sh -c 'echo $$ > pid; exec sleep 1000') & sleep 1000");
    step.grace = Duration::from_secs(1);
    let (tx, stop) = watch::channel(None);
    let pid_file = dir.path().join("pid");
    let (result, (stopped_at, grandchild)) = tokio::join!(run_step(step.request(), stop), async {
        let pid = pid_in(&pid_file).await;
        tx.send(Some(15)).expect("executor listens");
        (Instant::now(), pid)
    });
    assert_eq!(result.end, StepEnd::Interrupted(15));
    let took = (result.started + result.duration).saturating_duration_since(stopped_at);
    assert!(took >= Duration::from_millis(900), "waited the grace: {took:?}");
    assert!(took < step.grace + SLACK, "{took:?}");
    assert_dies(grandchild).await;
}

#[tokio::test]
async fn a_stray_background_grandchild_is_killed_after_a_normal_exit() {
    let dir = tempdir();
    let step = Step::shell(&dir, "sleep 1000 & echo $! > pid; echo done");
    let result = step.run().await;
    assert_eq!(result.end, StepEnd::Exited(0));
    assert_eq!(result.tail, "done\n");
    assert!(result.duration < SLACK, "{:?}", result.duration);
    assert_dies(pid_in(&dir.path().join("pid")).await).await;
}

#[tokio::test]
async fn a_process_that_left_the_group_cannot_hang_the_runner() {
    let dir = tempdir();
    // `setsid` puts the sleep in a new session, out of the group's reach, holding our
    // output pipes. The step waits until it is there.
    let step = Step::shell(
        &dir,
        "setsid sh -c 'echo $$ > pid; exec sleep 1000' & while [ ! -s pid ]; do sleep 0.05; done; echo done",
    );
    let result = step.run().await;
    let escaped = pid_in(&dir.path().join("pid")).await;
    kill(Pid::from_raw(escaped), Signal::SIGKILL).ok();
    assert_eq!(result.end, StepEnd::Exited(0));
    assert_eq!(result.tail, "done\n");
    assert!(result.duration < DRAIN + SLACK, "{:?}", result.duration);
}

#[tokio::test]
async fn a_stop_that_already_fired_does_not_start_the_step() {
    let dir = tempdir();
    let step = Step::shell(&dir, "echo ran > marker");
    let (_tx, stop) = watch::channel(Some(15));
    let result = run_step(step.request(), stop).await;
    assert_eq!(result.end, StepEnd::Interrupted(15));
    assert!(!dir.path().join("marker").exists());
}

#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let dir = tempdir();
    let step = Step::shell(&dir, "sleep 1000 & echo $! > pid; sleep 1000");
    let pid_file = dir.path().join("pid");
    let (_tx, stop) = watch::channel(None);
    let run = run_step(step.request(), stop);
    tokio::select! {
        _ = run => panic!("the step cannot end by itself"),
        _ = pid_in(&pid_file) => {}
    }
    assert_dies(pid_in(&pid_file).await).await;
}
