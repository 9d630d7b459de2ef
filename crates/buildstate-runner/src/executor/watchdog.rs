//! Ties a step's process group to the life of this process.
//!
//! A step runs in its own process group, so `kill -9` of the runner would leave it
//! running — and once the runner's lease expired, a successor would start the same
//! milestone beside it (two `packer build`s on one image). Fencing stops the dead
//! runner's *writes*, not its processes. So next to every step we start a tiny watchdog
//! in the step's group: `sh` blocked reading a pipe whose write end only this process
//! holds. When this process dies, however it dies, the kernel closes the pipe, `read`
//! returns, and the watchdog kills its whole group — the step and everything it started.
//!
//! (The Linux parent-death signal would need `unsafe` in `pre_exec` and reaches only the
//! direct child; the pipe needs neither.) While the runner lives, the watchdog is just
//! one more member of the group: killed with it on a timeout, an interruption, or the
//! clean-up after a normal exit.

use std::process::Stdio;

use tokio::process::{ChildStdin, Command};

/// Holds the pipe's write end for as long as the step runs.
#[derive(Debug)]
pub(crate) struct Watchdog {
    _pipe: Option<ChildStdin>,
}

/// Starts the watchdog in the group led by `leader` (the step's pid). Best effort: if
/// the group is already gone (a step that exited at once), there is nothing to guard.
pub(crate) fn arm(leader: Option<u32>) -> Watchdog {
    let Some(pgid) = leader.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) else {
        return Watchdog { _pipe: None };
    };
    let child = Command::new("/bin/sh")
        .args(["-c", "read -r _; kill -KILL 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(pgid)
        .spawn();
    match child {
        Ok(mut child) => {
            let pipe = child.stdin.take();
            // Reap it the moment it dies (with its group): a zombie still counts as a
            // member of the group, and the executor waits for the group to be empty.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Watchdog { _pipe: pipe }
        }
        Err(e) => {
            tracing::debug!(pgid, error = %e, "no watchdog for the step (its group is already gone?)");
            Watchdog { _pipe: None }
        }
    }
}
