//! What `buildstate packer` and `buildstate ansible-playbook` share: taking the build's
//! lease (or acting for the runner whose step they are), and a [`Driver`] that moves
//! the build through the milestones the tool reports.

use std::path::PathBuf;

use buildstate_core::{Build, StateCode};
use buildstate_runner::dispatch::{LeaseKeeper, LeaseTtl, forward_stop};
use buildstate_runner::integrate::{Closing, DriveError, Driver, STEP_REPORT_ENV, step_until};
use buildstate_runner::pipeline::RetryDefaults;
use tokio::sync::watch;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::signals;

/// When the build's current milestone starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At once: the whole run is that milestone unless it reports others (Packer).
    Now,
    /// When the tool reaches it: a run whose first steps are behind the build's
    /// milestone (a playbook run again) records nothing for them (Ansible).
    WhenReached,
}

/// A tool run on one build.
pub struct ToolSession {
    pub driver: Driver,
    /// Our own lease, when no runner holds one for us.
    keeper: Option<LeaseKeeper>,
}

impl ToolSession {
    /// On its own, takes the build's lease and starts its current milestone (re-opening
    /// it if it failed there). As a pipeline step (the runner set `BUILDSTATE_STEP_REPORT`
    /// and passed its lease token), acts under the runner's lease and leaves the last
    /// milestone's end to it.
    pub async fn open(
        ctx: &Ctx,
        build: &Build,
        tool: &str,
        start: Start,
        lease_ttl: LeaseTtl,
        log: Option<String>,
    ) -> Result<ToolSession, CliError> {
        let report = std::env::var_os(STEP_REPORT_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
        let here = || Closing::Here { retry: RetryDefaults::installed().clone() };
        let (guard, closing, keeper) = match (report, ctx.guard.lease) {
            (Some(report), Some(_)) => (ctx.guard, Closing::Runner { report, until: step_until() }, None),
            // Under a wrapper that holds the lease (`exec … -- buildstate packer …`): act
            // for it, recording the end here.
            (None, Some(_)) => (ctx.guard, here(), None),
            (_, None) => {
                let keeper = LeaseKeeper::acquire(ctx.store.clone(), build.id, &ctx.actor, lease_ttl.get())
                    .await
                    .map_err(CliError::from)?;
                (keeper.guard(), here(), Some(keeper))
            }
        };
        let mut driver = Driver::attach(ctx.store.clone(), build.id, &ctx.actor, guard, closing, log)
            .await
            .map_err(drive_error)?;
        let why = format!("re-run by `buildstate {tool}`");
        // With a lease of our own, an attempt left open is a dead runner's: closed as
        // abandoned at once. Otherwise a lazy tool only re-opens a failed build.
        let dead = keeper.is_some() && driver.build().attempt_open();
        let begun = match (start, dead) {
            (_, true) => driver.take_over(&why).await,
            (Start::Now, false) => driver.begin(&why).await,
            (Start::WhenReached, false) => driver.reopen(&why).await,
        };
        if let Err(e) = begun {
            if let Some(k) = keeper {
                k.release().await;
            }
            return Err(drive_error(e));
        }
        Ok(ToolSession { driver, keeper })
    }

    /// Raised when our own lease is lost (`lease break`, a take-over): the tool must
    /// then be stopped, as `exec` stops its command. Never raised under a runner, which
    /// stops its step itself.
    pub fn lost(&self) -> watch::Receiver<bool> {
        match &self.keeper {
            Some(k) => k.lost(),
            None => watch::channel(false).1,
        }
    }

    /// Starts forwarding a signal, or the loss of our lease, to the tool: the receiver
    /// goes to `run_step`; [`Stops::ended`] is called once the tool has exited.
    pub fn watch_stops(&self) -> (Stops, watch::Receiver<Option<i32>>) {
        let lost = self.lost();
        let (step_stop, step_stop_rx) = watch::channel(None);
        let forward = tokio::spawn(forward_stop(signals::stop_on_signals(), lost.clone(), step_stop));
        (Stops { forward, lost }, step_stop_rx)
    }

    /// The milestone the build is at now.
    #[allow(dead_code)] // not every tool needs it (`buildstate ansible-playbook` does not)
    pub fn state(&self) -> StateCode {
        self.driver.build().state
    }

    /// Gives the lease back (if it is ours and still held).
    #[allow(dead_code)] // not every tool needs it (`buildstate ansible-playbook` does not)
    pub async fn release(self) {
        release(self.keeper).await;
    }

    /// Splits the session into its driver (to finish) and its lease (to [`release`]
    /// after).
    pub fn into_parts(self) -> (Driver, Option<LeaseKeeper>) {
        (self.driver, self.keeper)
    }
}

/// Gives our lease back, if we have one and it is still ours.
pub async fn release(keeper: Option<LeaseKeeper>) {
    if let Some(k) = keeper
        && !*k.lost().borrow()
    {
        k.release().await;
    }
}

/// The forwarding started by [`ToolSession::watch_stops`].
pub struct Stops {
    forward: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<bool>,
}

impl Stops {
    /// After the tool exited: an error when the lease was lost meanwhile, since the
    /// lease is someone else's now and nothing more may be written (fencing); the open
    /// attempt is closed as abandoned by the build's next runner.
    pub fn ended(self, tool: &str, build: &Build) -> Result<(), CliError> {
        self.forward.abort();
        if !*self.lost.borrow() {
            return Ok(());
        }
        Err(CliError::new(
            Exit::Conflict,
            format!(
                "the lease on build {} was lost while {tool} ran; it was stopped and nothing more was recorded",
                build.number
            ),
        )
        .with_hint("see `buildstate lease list` for who holds the build now"))
    }
}

/// A driver error in the CLI's shape (and exit code).
pub fn drive_error(e: DriveError) -> CliError {
    match e {
        DriveError::Store(e) => e.into(),
        e @ DriveError::BeyondStep { .. } => CliError::usage(e.to_string())
            .with_hint("map the tool's steps to milestones before the pipeline's next step, or give the later milestone a step of its own"),
        DriveError::NotInCatalog { code, build } => CliError::usage(format!(
            "milestone {code} is not in the catalog of build {build}"
        ))
        .with_hint(
            "map tool steps to milestones of the build's catalog (`buildstate build show REF` lists them)",
        ),
        other => CliError::internal(other.to_string()),
    }
}
