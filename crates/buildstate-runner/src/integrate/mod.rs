//! Tools that report their own milestones (`buildstate packer`, the Ansible callback):
//! one [`Driver`] moves a build through the milestones a tool passes, so that Packer's
//! provisioners and Ansible's plays become milestones by one algorithm.
//!
//! Who records the *last* milestone's outcome depends on who runs the tool:
//! - on its own (`buildstate packer REF -- …` in a CI step), the tool's wrapper holds
//!   the lease and records the end itself ([`Closing::Here`]);
//! - as a pipeline step, the runner started the step's milestone and records its end
//!   with the step's retry policy, so the tool only moves the build on and leaves its
//!   failure details in a [`StepReport`] for the runner ([`Closing::Runner`]).

mod report;

use std::path::PathBuf;
use std::sync::Arc;

use buildstate_core::{Build, BuildId, BuildStatus, Command, FailureClass, FailureInfo, StateCode};
use buildstate_store::{Guard, Store, StoreError};

use crate::pipeline::RetryDefaults;

pub use report::{STEP_REPORT_ENV, STEP_UNTIL_ENV, StepReport, step_until};

/// Who records the outcome of the milestone the build is at when the tool ends.
#[derive(Clone, Debug)]
pub enum Closing {
    /// The wrapper: failures are recorded as they happen, under the policy these give
    /// the milestone that failed (a Packer run started at 5 may fail at 15).
    Here { retry: RetryDefaults },
    /// The runner of the pipeline step: failures go to this report file, and the tool
    /// may move the build up to (not including) `until`, the pipeline's next step.
    Runner { report: PathBuf, until: Option<StateCode> },
}

/// What went wrong driving a build.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("milestone {code} is not in the catalog of build {build}")]
    NotInCatalog { code: StateCode, build: String },
    #[error(
        "milestone {code} is at or after {until}, the pipeline's next step: a tool step only moves its build through the milestones before the next step"
    )]
    BeyondStep { code: StateCode, until: StateCode },
    #[error("cannot write the step report {path}: {why}")]
    Report { path: String, why: String },
}

/// Moves one build through milestones on behalf of a tool, under a lease it was given.
pub struct Driver {
    store: Arc<dyn Store>,
    id: BuildId,
    build: Build,
    actor: String,
    guard: Guard,
    closing: Closing,
    /// The log recorded on attempts this driver starts.
    log: Option<String>,
    /// A failure has been recorded (or reported) for the current milestone.
    failed: bool,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("build", &self.build.number).field("closing", &self.closing).finish()
    }
}

impl Driver {
    /// Reads the build; records nothing.
    pub async fn attach(
        store: Arc<dyn Store>,
        id: BuildId,
        actor: &str,
        guard: Guard,
        closing: Closing,
        log: Option<String>,
    ) -> Result<Driver, DriveError> {
        let build = store.build(id).await?;
        Ok(Driver { store, id, build, actor: actor.to_owned(), guard, closing, log, failed: false })
    }

    /// The build as last read or written.
    pub fn build(&self) -> &Build {
        &self.build
    }

    pub fn guard(&self) -> Guard {
        self.guard
    }

    pub fn closing(&self) -> &Closing {
        &self.closing
    }

    /// Starts the build's current milestone (on its own, the wrapper's first step):
    /// a build that failed there is re-opened first — running the tool again is a
    /// person's decision to try again — and an attempt left open is closed as abandoned.
    /// Does nothing when the build is already running (a runner started it).
    pub async fn begin(&mut self, why: &str) -> Result<(), DriveError> {
        self.open_milestone(why, false).await
    }

    /// [`Driver::begin`] for a wrapper that has just taken the build's lease itself: an
    /// attempt left open is a dead runner's (one killed with SIGKILL), so it is closed
    /// as abandoned and a new attempt started, as `exec` does.
    pub async fn take_over(&mut self, why: &str) -> Result<(), DriveError> {
        self.open_milestone(why, true).await
    }

    /// Re-opens a build that failed at its milestone (running the tool again is a
    /// person's decision to try again) without starting anything: for a tool whose
    /// first step may lie behind the build's milestone (a playbook run again), the
    /// milestone starts when the tool reaches it.
    pub async fn reopen(&mut self, why: &str) -> Result<(), DriveError> {
        self.refresh().await?;
        if self.build.status == BuildStatus::Failed {
            let retry = Command::Retry {
                actor: self.actor.clone(),
                reason: Some(why.to_owned()),
                force: self.build.needs_intervention,
            };
            self.apply(&retry).await?;
        }
        Ok(())
    }

    async fn open_milestone(&mut self, why: &str, abandon_open: bool) -> Result<(), DriveError> {
        self.reopen(why).await?;
        if self.open() && (abandon_open || !self.build.attempt_open()) {
            self.start(self.build.state).await?;
        }
        Ok(())
    }

    /// The tool has reached milestone `code`: a code at or behind the build's milestone
    /// changes nothing (a re-run passes the milestones it already did); a later one
    /// completes the running milestone, records those in between as skipped, and starts
    /// `code`. Returns whether anything was recorded.
    pub async fn reach(&mut self, code: StateCode, passed_by: &str) -> Result<bool, DriveError> {
        self.refresh().await?;
        if !self.build.catalog.contains(code) {
            return Err(DriveError::NotInCatalog { code, build: self.build.number.to_string() });
        }
        if let Closing::Runner { until: Some(until), .. } = &self.closing
            && code >= *until
        {
            return Err(DriveError::BeyondStep { code, until: *until });
        }
        let state = self.build.state;
        if code < state || !self.open() {
            return Ok(false);
        }
        if code == state {
            if !self.build.attempt_open() {
                self.start(code).await?;
                return Ok(true);
            }
            return Ok(false);
        }
        self.complete_current(None).await?;
        while self.build.state < code && self.open() {
            let skip = Command::Skip {
                state: self.build.state,
                actor: self.actor.clone(),
                reason: format!("passed by {passed_by} without a milestone of its own"),
            };
            self.apply(&skip).await?;
        }
        if self.build.state == code && self.open() && !self.build.attempt_open() {
            self.start(code).await?;
        }
        Ok(true)
    }

    /// Whether the build can move on: not delivered, cancelled or failed.
    fn open(&self) -> bool {
        matches!(self.build.status, BuildStatus::Pending | BuildStatus::Running)
    }

    /// Completes the running milestone (the one with an open attempt), if any.
    pub async fn complete_current(&mut self, exit_code: Option<i32>) -> Result<bool, DriveError> {
        self.refresh().await?;
        if !self.build.attempt_open() {
            return Ok(false);
        }
        let done = Command::Complete {
            state: self.build.state,
            actor: self.actor.clone(),
            exit_code,
            log: self.log.clone(),
        };
        self.apply(&done).await?;
        self.failed = false;
        Ok(true)
    }

    /// The running milestone failed. On its own the failure is recorded now, its class
    /// raised to transient when the retry policy's patterns match `output`; under a
    /// runner it is written to the step report, for the runner to record with the
    /// step's policy. Only the first failure of a milestone counts.
    pub async fn fail(&mut self, mut failure: FailureInfo, output: &str) -> Result<(), DriveError> {
        if self.failed {
            return Ok(());
        }
        self.failed = true;
        match self.closing.clone() {
            Closing::Here { retry } => {
                self.refresh().await?;
                if !self.open() {
                    return Ok(());
                }
                if !self.build.attempt_open() {
                    // It failed between milestones (a play of no known milestone after
                    // one completed): the failure belongs to the milestone it stopped
                    // at, never dropped.
                    self.start(self.build.state).await?;
                    self.failed = true;
                }
                let policy = retry.policy_for(self.build.state);
                if policy.transient.classify(failure.exit_code, output) == FailureClass::Transient {
                    failure.class = FailureClass::Transient;
                }
                let fail = Command::Fail {
                    state: self.build.state,
                    actor: self.actor.clone(),
                    failure,
                    max_attempts: policy.max_attempts,
                    log: self.log.clone(),
                };
                self.apply(&fail).await?;
                Ok(())
            }
            Closing::Runner { report, .. } => {
                StepReport { failure: Some(failure) }.write(&report).map_err(|why| DriveError::Report {
                    path: report.display().to_string(),
                    why: why.to_string(),
                })
            }
        }
    }

    /// The tool ended. On its own: a success completes the running milestone; a
    /// failure not yet recorded is recorded from `fallback`. Under a runner nothing
    /// more is recorded: the runner closes the milestone the build is at.
    pub async fn finish(
        mut self,
        success: bool,
        exit_code: Option<i32>,
        fallback: impl FnOnce() -> FailureInfo,
    ) -> Result<Build, DriveError> {
        match (&self.closing, success) {
            (Closing::Here { .. }, true) => {
                self.complete_current(exit_code).await?;
            }
            (Closing::Here { .. }, false) => {
                let failure = fallback();
                self.fail(failure, "").await?;
            }
            (Closing::Runner { .. }, false) if !self.failed => {
                let failure = fallback();
                self.fail(failure, "").await?;
            }
            (Closing::Runner { .. }, _) => {}
        }
        self.refresh().await?;
        Ok(self.build)
    }

    async fn start(&mut self, state: StateCode) -> Result<(), DriveError> {
        let start = Command::Start {
            state,
            actor: self.actor.clone(),
            log: self.log.clone(),
            force: self.build.attempt_open() && self.build.state == state,
        };
        self.apply(&start).await?;
        self.failed = false;
        Ok(())
    }

    async fn apply(&mut self, command: &Command) -> Result<(), DriveError> {
        self.build = self.store.apply(self.id, command, self.guard).await?.build;
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), DriveError> {
        self.build = self.store.build(self.id).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
