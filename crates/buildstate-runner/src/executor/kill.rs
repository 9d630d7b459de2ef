//! Signalling a step's process group.
//!
//! Every step is the leader of its own process group (`process_group(0)`), so the group
//! id is the child's pid and one `killpg` reaches the child and everything it started —
//! `kill_on_drop` alone would reach only the direct child and leave grandchildren (the
//! `sleep` of `sh -c 'sleep 1000 & …'`, a packer plugin, …) running and holding the
//! output pipes open.
//!
//! Processes that leave the group on purpose (`setsid`, daemons) are out of reach; the
//! executor stops waiting for the pipes they hold after a short drain period.
//!
//! On pid reuse: a group id stays reserved by the kernel while any process is in the
//! group, so signalling it after the leader was reaped reaches the group's remaining
//! members or, once they are all gone, fails with `ESRCH`.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// How often the group is polled for survivors during the grace period after the
/// leader is gone.
const POLL: Duration = Duration::from_millis(20);

/// A step's process group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group {
    pgid: Pid,
}

impl Group {
    /// The group led by the child with this pid (spawned with `process_group(0)`).
    /// Never group 0 (`killpg(0, …)` would signal our own group) nor 1.
    pub(crate) fn led_by(pid: u32) -> Option<Group> {
        let pid = i32::try_from(pid).ok().filter(|p| *p > 1)?;
        Some(Group { pgid: Pid::from_raw(pid) })
    }

    /// Sends `signal` to every process in the group. Returns whether anyone was there.
    pub(crate) fn signal(self, signal: Signal) -> bool {
        match killpg(self.pgid, signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => false,
            Err(e) => {
                // EPERM: a member changed its user (setuid). Nothing more we can do.
                tracing::warn!("sending {signal} to process group {} failed: {e}", self.pgid);
                true
            }
        }
    }

    /// Whether any process (zombies included) is still in the group.
    pub(crate) fn alive(self) -> bool {
        !matches!(killpg(self.pgid, None), Err(Errno::ESRCH))
    }

    /// Waits until the group is empty, polling; returns as soon as it is.
    /// The caller bounds this with a timeout.
    pub(crate) async fn until_empty(self) {
        while self.alive() {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Kills the whole group with SIGKILL when dropped, unless disarmed.
///
/// This covers a `run_step` future dropped half-way (its caller was cancelled): the
/// step's processes must not outlive the attempt that ran them.
#[derive(Debug)]
pub(crate) struct KillOnDrop {
    group: Option<Group>,
}

impl KillOnDrop {
    pub(crate) fn new(group: Option<Group>) -> Self {
        KillOnDrop { group }
    }

    pub(crate) fn disarm(&mut self) {
        self.group = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            group.signal(Signal::SIGKILL);
        }
    }
}
