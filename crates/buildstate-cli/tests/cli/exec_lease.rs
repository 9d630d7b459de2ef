//! `exec` under a lease that is lost while its command runs (`lease break`, issue 7 §4):
//! the command's whole process group is stopped within seconds, nothing more is
//! recorded by the old exec, and it exits 5 — so that a second `exec` never runs the
//! milestone beside the first one's command.

use std::time::{Duration, Instant};

use crate::common::{Env, eventually, process_alive, read};

#[test]
fn lease_break_under_a_live_exec_kills_its_command_and_exits_5() {
    lease_break_under_a_live_exec_kills_its_command_and_exits_5_in(Env::new());
}

/// The same through `buildstate serve`, the CLI given only its URL and a token.
#[test]
fn lease_break_under_a_live_exec_kills_its_command_and_exits_5_through_the_server() {
    lease_break_under_a_live_exec_kills_its_command_and_exits_5_in(Env::served());
}

fn lease_break_under_a_live_exec_kills_its_command_and_exits_5_in(env: Env) {
    let env = env.with_catalog();
    let b = env.build("lease-exec-1");
    let pid_file = env.path("grandchild.pid");
    // A shell whose child (a grandchild of exec, in the command's process group) writes
    // down its pid and sleeps: the whole group must go, not only the shell.
    let hang = format!("sleep 301 & echo $! > '{}.tmp'; mv '{0}.tmp' '{0}'; wait", pid_file.display());
    let mut first = env
        .spawn("first", &["exec", &b, "0", "--lease-ttl", "60s", "--grace", "1s", "--", "sh", "-c", &hang]);
    assert!(
        eventually(Duration::from_secs(30), || pid_file.exists()),
        "the command started: {}",
        first.output()
    );
    let grandchild: u32 = read(&pid_file).trim().parse().expect("a pid");
    assert!(process_alive(grandchild, "sleep 301"), "the command runs");

    let r = env.run(&["lease", "break", &b]);
    assert_eq!(r.code, 0, "{r:?}");
    let broke = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || !process_alive(grandchild, "sleep 301")),
        "the command's process group was stopped after the break: {}",
        first.output()
    );
    assert!(broke.elapsed() < Duration::from_secs(8), "stopped within seconds: {:?}", broke.elapsed());

    let code = first.wait(Duration::from_secs(30));
    assert_eq!(code, 5, "a lost lease is a conflict: {}", first.output());
    let stderr = read(&first.stderr);
    assert!(
        stderr.contains("error: lease token") && stderr.contains("the lease was released or broken"),
        "says why it stopped: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The old exec wrote nothing after its start: the attempt is open, and no lease is
    // left behind (it was broken, not re-taken).
    let history = env.history(&b);
    let last = history.last().expect("history");
    assert_eq!(
        (last["kind"].as_str(), last["state"].as_u64(), last["attempt"].as_u64()),
        (Some("started"), Some(0), Some(1)),
        "attempt 1 left open for the next runner: {history:#?}"
    );
    assert_eq!(env.json(&["lease", "list"]), serde_json::json!([]), "no lease left");

    // The next exec starts over it: attempt 1 is recorded as abandoned, attempt 2 runs.
    let second = env.run(&["exec", &b, "0", "--", "echo", "second"]);
    assert_eq!((second.code, second.stdout.as_str()), (0, "second\n"), "{second:?}");
    let history = env.history(&b);
    let tail: Vec<_> = history[history.len() - 3..]
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or("").to_owned(), e["attempt"].as_u64(), e["forced"] == true))
        .collect();
    assert_eq!(
        tail,
        [
            ("failed".to_owned(), Some(1), true),
            ("started".to_owned(), Some(2), true),
            ("completed".to_owned(), Some(2), false)
        ],
        "{history:#?}"
    );
    let abandoned = &history[history.len() - 3];
    assert!(abandoned["message"].as_str().is_some_and(|m| m.starts_with("attempt abandoned")), "{abandoned}");
}
