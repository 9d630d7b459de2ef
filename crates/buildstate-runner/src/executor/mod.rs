//! Runs one step as a child process group.
//!
//! [`run_step`] owns the child from spawn to reap: it starts the step in its own process
//! group with stdin from `/dev/null`, drains stdout and stderr concurrently into the log
//! file and a bounded tail (and, for `buildstate exec`, through to our own stdout and
//! stderr), and ends it on a timeout or when `stop` fires: SIGTERM to the whole group,
//! `grace` to exit, then SIGKILL. It never panics and never returns an error: every
//! failure is a [`StepEnd`] or shows in the tail.
//!
//! Files: `spawn.rs` (command line, process group, spawn failure messages), `kill.rs`
//! (group signalling), `output.rs` (pumps, log, tail, passthrough).

mod kill;
mod output;
mod spawn;
#[cfg(test)]
mod tests;
mod watchdog;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::AsyncWrite;
use tokio::sync::watch;

use crate::pipeline::Program;
use kill::{Group, KillOnDrop};
use output::{Forward, Recorder};

pub use output::{TAIL_MAX_BYTES, TAIL_MAX_LINES};

/// After the step's process group is gone, how long we keep reading output that is still
/// in the pipes. Only a process that left the group (`setsid`, a daemon) can hold the
/// pipes open longer; we stop waiting for it rather than hang.
const DRAIN: Duration = Duration::from_secs(2);

/// How long to wait for the leader to be reaped after SIGKILL. SIGKILL cannot be caught,
/// so only a process stuck in the kernel (a dead NFS mount) takes longer; tokio reaps it
/// in the background when it finally dies.
const REAP_AFTER_KILL: Duration = Duration::from_secs(10);

/// Where the step's output goes besides the log file and the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Captured only (log file and tail).
    Capture,
    /// Also forwarded as it arrives: the child's stdout to our stdout and its stderr to
    /// our stderr, byte for byte (`buildstate exec`).
    Passthrough,
}

/// One step to run.
#[derive(Debug)]
pub struct StepRequest<'a> {
    pub program: &'a Program,
    /// The child's working directory; relative program and script paths start here.
    pub workdir: &'a Path,
    /// Added to the inherited environment (overriding inherited values).
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    /// Created with its parent directories if missing; both streams are appended in
    /// arrival order, raw bytes.
    pub log: &'a Path,
    pub output: OutputMode,
    /// SIGTERM → wait this long → SIGKILL.
    pub grace: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// It exited with this status code.
    Exited(i32),
    /// It was killed by a signal we did not send.
    Signaled(i32),
    /// We killed it at the timeout.
    TimedOut,
    /// We killed it because `stop` fired with this signal number (SIGINT=2, SIGTERM=15).
    Interrupted(i32),
    /// It could not start; the message says what was wrong and how to fix it.
    SpawnFailed(String),
}

impl fmt::Display for StepEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepEnd::Exited(code) => write!(f, "exited with code {code}"),
            StepEnd::Signaled(sig) => write!(f, "killed by {}", signal_name(*sig)),
            StepEnd::TimedOut => f.write_str("timed out"),
            StepEnd::Interrupted(sig) => write!(f, "interrupted by {}", signal_name(*sig)),
            StepEnd::SpawnFailed(message) => write!(f, "could not start: {message}"),
        }
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

/// The outcome of [`run_step`].
#[derive(Debug, Clone)]
pub struct StepResult {
    pub end: StepEnd,
    pub started: Instant,
    pub duration: Duration,
    /// The last lines of the combined output: at most [`TAIL_MAX_LINES`] lines and
    /// [`TAIL_MAX_BYTES`] bytes, lossy UTF-8. Notes of ours (why the step could not
    /// start, a failing log) start with `buildstate: `.
    pub tail: String,
    pub log: PathBuf,
}

impl StepResult {
    pub fn success(&self) -> bool {
        self.end == StepEnd::Exited(0)
    }

    /// The exit status code if the step exited on its own, else `None`.
    pub fn exit_code(&self) -> Option<i32> {
        match self.end {
            StepEnd::Exited(code) => Some(code),
            _ => None,
        }
    }
}

/// Runs one step to its end. `stop` becoming `Some(signal)` interrupts it; a `stop`
/// that is already `Some` when called does not start the step at all.
///
/// Dropping the returned future kills the step's process group.
pub async fn run_step(req: StepRequest<'_>, stop: watch::Receiver<Option<i32>>) -> StepResult {
    match req.output {
        OutputMode::Capture => {
            run_with(req, stop, Forward::<tokio::io::Stdout, tokio::io::Stderr>::none()).await
        }
        OutputMode::Passthrough => {
            let forward = Forward { stdout: Some(tokio::io::stdout()), stderr: Some(tokio::io::stderr()) };
            run_with(req, stop, forward).await
        }
    }
}

/// [`run_step`] with the step's stdout and stderr forwarded to `stdout` and `stderr`
/// instead of ours (`req.output` is not used): `buildstate packer` reads Packer's
/// machine-readable stdout through a pipe of its own as it arrives, while the log
/// file still gets the raw bytes. A slow reader slows the step down (the pipe is
/// bounded) rather than losing lines.
pub async fn run_step_to<O, E>(
    req: StepRequest<'_>,
    stop: watch::Receiver<Option<i32>>,
    stdout: O,
    stderr: E,
) -> StepResult
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    run_with(req, stop, Forward { stdout: Some(stdout), stderr: Some(stderr) }).await
}

async fn run_with<O, E>(
    req: StepRequest<'_>,
    mut stop: watch::Receiver<Option<i32>>,
    mut forward: Forward<O, E>,
) -> StepResult
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let started = Instant::now();
    let done = |end: StepEnd, tail: String| StepResult {
        end,
        started,
        duration: started.elapsed(),
        tail,
        log: req.log.to_owned(),
    };

    let log = match open_log(req.log) {
        Ok(log) => log,
        Err(message) => {
            let tail = format!("buildstate: {message}\n");
            return done(StepEnd::SpawnFailed(message), tail);
        }
    };
    let mut recorder = Recorder::new(log, req.log);

    let already_stopped = *stop.borrow_and_update();
    if let Some(sig) = already_stopped {
        return done(StepEnd::Interrupted(sig), recorder.finish());
    }

    let mut child = match spawn::spawn(req.program, req.workdir, req.env) {
        Ok(child) => child,
        Err(message) => {
            tracing::debug!("step could not start: {message}");
            recorder.note(&message);
            return done(StepEnd::SpawnFailed(message), recorder.finish());
        }
    };
    let group = child.id().and_then(Group::led_by);
    tracing::debug!(pid = child.id(), "step started");
    // Kept until the step is over: if this process dies, the watchdog kills the group.
    let _watchdog = watchdog::arm(child.id());
    let mut guard = KillOnDrop::new(group);

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let limits = Limits { timeout: req.timeout, grace: req.grace };
    let end = {
        let wait = child.wait();
        let pump = output::pump(stdout, stderr, &mut recorder, &mut forward);
        supervise(wait, pump, group, limits, &mut stop).await
    };
    // The sinks close here, so that a reader of `run_step_to`'s pipe sees its end.
    drop(forward);
    guard.disarm();
    tracing::debug!("step {end}");
    done(end, recorder.finish())
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Option<Duration>,
    grace: Duration,
}

/// Waits for the step to end while the output pump runs, enforces the timeout and
/// `stop`, and leaves nothing of the process group behind.
async fn supervise<W, P>(
    wait: W,
    pump: P,
    group: Option<Group>,
    limits: Limits,
    stop: &mut watch::Receiver<Option<i32>>,
) -> StepEnd
where
    W: Future<Output = io::Result<ExitStatus>>,
    P: Future<Output = ()>,
{
    tokio::pin!(wait, pump);
    let mut pump = Pumping { pump, running: true };
    let deadline = limits.timeout.map(|t| tokio::time::Instant::now() + t);

    let first = pump
        .alongside(async {
            tokio::select! {
                status = &mut wait => First::Exited(status),
                () = sleep_until(deadline) => First::Kill(StepEnd::TimedOut),
                sig = stop_signal(stop) => First::Kill(StepEnd::Interrupted(sig)),
            }
        })
        .await;

    let end = match first {
        First::Exited(status) => end_of(status),
        First::Kill(end) => {
            tracing::debug!("stopping the step ({end}): SIGTERM, then SIGKILL after {:?}", limits.grace);
            terminate(group, wait.as_mut(), limits.grace, &mut pump).await;
            end
        }
    };

    // Whatever is left of the group dies now, also after a normal exit: a background
    // grandchild (`server &`) holds our output pipes open, and the pump — and so the
    // runner — would wait on it forever. A step's processes never outlive the step.
    if let Some(group) = group
        && group.signal(Signal::SIGKILL)
    {
        tracing::debug!("killed processes left in the step's process group");
    }

    if pump.running && tokio::time::timeout(DRAIN, pump.pump.as_mut()).await.is_err() {
        tracing::warn!(
            "a process that left the step's process group still holds its output open; no longer reading it"
        );
    }
    end
}

enum First {
    Exited(io::Result<ExitStatus>),
    Kill(StepEnd),
}

/// The output pump, polled alongside whatever the supervisor waits for, so that the
/// step never blocks on a full pipe — also during the grace period.
struct Pumping<P> {
    pump: Pin<P>,
    running: bool,
}

impl<P> Pumping<P>
where
    P: std::ops::DerefMut,
    P::Target: Future<Output = ()>,
{
    async fn alongside<T>(&mut self, fut: impl Future<Output = T>) -> T {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                biased;
                v = &mut fut => return v,
                () = self.pump.as_mut(), if self.running => self.running = false,
            }
        }
    }
}

/// SIGTERM to the group, up to `grace` for every member to exit, then SIGKILL; always
/// reaps the leader.
async fn terminate<W, P>(group: Option<Group>, mut wait: Pin<&mut W>, grace: Duration, pump: &mut Pumping<P>)
where
    W: Future<Output = io::Result<ExitStatus>>,
    P: std::ops::DerefMut,
    P::Target: Future<Output = ()>,
{
    let deadline = tokio::time::Instant::now() + grace;
    let Some(group) = group else {
        // No pid means tokio already reaped the child: nothing to signal.
        pump.alongside(wait.as_mut()).await.ok();
        return;
    };
    group.signal(Signal::SIGTERM);
    let reaped = pump.alongside(tokio::time::timeout_at(deadline, wait.as_mut())).await.is_ok();
    if reaped {
        // The leader is gone; its children get the rest of the grace period too.
        pump.alongside(tokio::time::timeout_at(deadline, group.until_empty())).await.ok();
    }
    if group.signal(Signal::SIGKILL) {
        tracing::debug!("the step's process group outlived the grace period: SIGKILL");
    }
    if !reaped && pump.alongside(tokio::time::timeout(REAP_AFTER_KILL, wait.as_mut())).await.is_err() {
        tracing::warn!(
            "the step did not exit {REAP_AFTER_KILL:?} after SIGKILL; leaving it to be reaped in the background"
        );
    }
}

fn end_of(status: io::Result<ExitStatus>) -> StepEnd {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => StepEnd::Exited(code),
            (None, Some(sig)) => StepEnd::Signaled(sig),
            (None, None) => StepEnd::SpawnFailed(format!("the step ended with an unknown status: {status}")),
        },
        // `wait` fails only if the child was reaped behind tokio's back.
        Err(e) => StepEnd::SpawnFailed(format!("lost track of the step's process: {e}")),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The signal `stop` fires with; never resolves if the sender is gone without firing.
async fn stop_signal(stop: &mut watch::Receiver<Option<i32>>) -> i32 {
    let fired = match stop.wait_for(Option::is_some).await {
        Ok(value) => *value,
        Err(_) => None,
    };
    match fired {
        Some(sig) => sig,
        None => std::future::pending().await,
    }
}

fn open_log(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!("cannot create the log directory {}: {e}; check that it is writable", dir.display())
        })?;
    }
    OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
        format!("cannot open the step log {}: {e}; check that its directory is writable", path.display())
    })
}
