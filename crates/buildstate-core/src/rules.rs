//! The transition rules of SPEC §2, as one pure function.
//!
//! Stores call [`apply`] inside their transaction, on the build as stored, and write the
//! outcome only if the row is still at the version they read (compare-and-swap). The
//! rules are therefore enforced in exactly one place, whatever the backend.

use jiff::Timestamp;

use crate::{
    Build, BuildNumber, BuildStatus, Command, EventKind, FailureClass, FailureInfo, FailureRecord,
    FailureType, HistoryEvent, MAX_MESSAGE_BYTES, MAX_NOTE_BYTES, StateCode, clean_text,
};

/// What an accepted command produces: the new build and what to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub build: Build,
    pub events: Vec<HistoryEvent>,
    pub failures: Vec<FailureRecord>,
}

/// Why a command was refused. A refused command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("state {state} is not in the catalog of build {build} (valid: {valid})")]
    NotInCatalog { build: BuildNumber, state: StateCode, valid: String },
    #[error(
        "build {build} is {status} at {state}; nothing but `buildstate rewind {build} --to CODE --reason …` can reopen it"
    )]
    Terminal { build: BuildNumber, status: BuildStatus, state: StateCode },
    #[error(
        "state {requested} of build {build} is already behind it (it is at {current}, {name}); going back needs `buildstate rewind {build} --to {requested} --reason …`"
    )]
    Behind { build: BuildNumber, requested: StateCode, current: StateCode, name: String },
    #[error("build {build} is at {current} ({name}), not {requested}; finish {current} first")]
    Ahead { build: BuildNumber, requested: StateCode, current: StateCode, name: String },
    #[error(
        "build {build} failed at {state} ({name}); run `buildstate retry {build}` before running that state again"
    )]
    MustRetry { build: BuildNumber, state: StateCode, name: String },
    #[error(
        "attempt {attempt} at state {state} of build {build} is still running; complete or fail it first, or start with --force to abandon it"
    )]
    AttemptOpen { build: BuildNumber, state: StateCode, attempt: u32 },
    #[error("build {build} is {status}, not failed; there is nothing to retry")]
    NotFailed { build: BuildNumber, status: BuildStatus },
    #[error(
        "build {build} needs a person: its failure at {state} is persistent or used up its retries ({attempts} attempts); fix the cause, then `buildstate retry {build} --force --reason …` (the override is recorded)"
    )]
    NeedsIntervention { build: BuildNumber, state: StateCode, attempts: u32 },
    #[error("cannot rewind build {build} forward to {to}: it is at {current}; rewind only moves back")]
    RewindForward { build: BuildNumber, to: StateCode, current: StateCode },
    #[error("state 100 (delivered) of build {build} cannot be skipped: it is the delivery itself")]
    SkipDelivery { build: BuildNumber },
    #[error("a reason is required to {action} build {build}: pass --reason \"…\"")]
    ReasonRequired { build: BuildNumber, action: &'static str },
}

/// Applies `cmd` to `build` at time `at`.
pub fn apply(build: &Build, cmd: &Command, at: Timestamp) -> Result<Outcome, Rejection> {
    let mut t = Tx::new(build, at);
    match cmd {
        Command::Start { state, actor, log, force } => {
            t.expect_current(*state)?;
            let abandoning = build.attempt_open();
            if abandoning {
                if !force {
                    return Err(Rejection::AttemptOpen {
                        build: build.number.clone(),
                        state: build.state,
                        attempt: build.attempt,
                    });
                }
                let abandoned = FailureInfo {
                    failure_type: FailureType::interrupted(),
                    class: FailureClass::Transient,
                    component: None,
                    message: format!("attempt abandoned: {actor} started a new one with --force"),
                    details: Default::default(),
                    exit_code: None,
                };
                t.close_failed(actor, &abandoned, None, true);
            }
            t.b.attempt += 1;
            t.b.attempt_started_at = Some(at);
            t.b.status = BuildStatus::Running;
            t.b.started_at.get_or_insert(at);
            let n = t.b.attempt;
            let e = t.event(EventKind::Started, build.state, actor);
            e.attempt = n;
            e.log = log.as_deref().map(clean_log);
            e.forced = abandoning;
        }
        Command::Complete { state, actor, exit_code, log } => {
            t.expect_current(*state)?;
            let started = t.begin_implicit_attempt();
            let n = t.b.attempt;
            let e = t.event(EventKind::Completed, build.state, actor);
            e.attempt = n;
            e.started_at = Some(started);
            e.duration_ms = Some(millis_between(started, at));
            e.exit_code = *exit_code;
            e.log = log.as_deref().map(clean_log);
            t.b.attempt_started_at = None;
            t.b.started_at.get_or_insert(started);
            t.advance();
        }
        Command::Fail { state, actor, failure, max_attempts, log } => {
            t.expect_current(*state)?;
            t.begin_implicit_attempt();
            t.b.started_at.get_or_insert(at);
            t.close_failed(actor, failure, log.as_deref().map(clean_log), false);
            t.b.needs_intervention =
                failure.class == FailureClass::Persistent || t.b.attempt >= (*max_attempts).max(1);
        }
        Command::Skip { state, actor, reason } => {
            t.expect_current(*state)?;
            if *state == StateCode::DELIVERED {
                return Err(Rejection::SkipDelivery { build: build.number.clone() });
            }
            t.expect_no_open_attempt()?;
            let e = t.event(EventKind::Skipped, build.state, actor);
            e.message = non_empty(reason);
            t.b.started_at.get_or_insert(at);
            t.advance();
        }
        Command::Retry { actor, reason, force } => {
            t.expect_not_terminal()?;
            if build.status != BuildStatus::Failed {
                return Err(Rejection::NotFailed { build: build.number.clone(), status: build.status });
            }
            if build.needs_intervention && !force {
                return Err(Rejection::NeedsIntervention {
                    build: build.number.clone(),
                    state: build.state,
                    attempts: build.attempt,
                });
            }
            t.b.status = BuildStatus::Running;
            t.b.needs_intervention = false;
            let e = t.event(EventKind::Retried, build.state, actor);
            e.attempt = build.attempt;
            e.message = reason.as_deref().and_then(non_empty);
            e.forced = *force && build.needs_intervention;
        }
        Command::Rewind { to, actor, reason } => {
            t.expect_in_catalog(*to)?;
            if *to > build.state {
                return Err(Rejection::RewindForward {
                    build: build.number.clone(),
                    to: *to,
                    current: build.state,
                });
            }
            let Some(reason) = non_empty(reason) else {
                return Err(Rejection::ReasonRequired { build: build.number.clone(), action: "rewind" });
            };
            t.b.state = *to;
            t.b.attempt = 0;
            t.b.attempt_started_at = None;
            t.b.needs_intervention = false;
            t.b.ended_at = None;
            t.b.status = if t.b.started_at.is_some() { BuildStatus::Running } else { BuildStatus::Pending };
            let e = t.event(EventKind::Rewound, *to, actor);
            e.from_state = Some(build.state);
            e.message = Some(reason);
        }
        Command::Cancel { actor, reason } => {
            t.expect_not_terminal()?;
            let Some(reason) = non_empty(reason) else {
                return Err(Rejection::ReasonRequired { build: build.number.clone(), action: "cancel" });
            };
            t.b.status = BuildStatus::Cancelled;
            t.b.attempt_started_at = None;
            t.b.needs_intervention = false;
            t.b.ended_at = Some(at);
            let e = t.event(EventKind::Cancelled, build.state, actor);
            e.attempt = build.attempt;
            e.message = Some(reason);
        }
        Command::SetMeta { key, value } => match value {
            Some(v) => {
                t.b.metadata.insert(key.clone(), v.clone());
            }
            None => {
                t.b.metadata.remove(key);
            }
        },
    }
    Ok(t.finish())
}

/// A log pointer is a path or URL: bounded and free of control characters like any text.
fn clean_log(log: &str) -> String {
    clean_text(log, MAX_NOTE_BYTES)
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| clean_text(s, MAX_NOTE_BYTES))
}

fn millis_between(a: Timestamp, b: Timestamp) -> u64 {
    u64::try_from(b.as_millisecond() - a.as_millisecond()).unwrap_or(0)
}

/// The working copy of one transition.
struct Tx<'a> {
    old: &'a Build,
    b: Build,
    at: Timestamp,
    events: Vec<HistoryEvent>,
    failures: Vec<FailureRecord>,
}

impl<'a> Tx<'a> {
    fn new(old: &'a Build, at: Timestamp) -> Self {
        Tx { old, b: old.clone(), at, events: Vec::new(), failures: Vec::new() }
    }

    fn expect_in_catalog(&self, state: StateCode) -> Result<(), Rejection> {
        if self.old.catalog.contains(state) {
            Ok(())
        } else {
            Err(Rejection::NotInCatalog {
                build: self.old.number.clone(),
                state,
                valid: self.old.catalog.code_list(),
            })
        }
    }

    fn expect_not_terminal(&self) -> Result<(), Rejection> {
        if self.old.status.is_terminal() {
            Err(Rejection::Terminal {
                build: self.old.number.clone(),
                status: self.old.status,
                state: self.old.state,
            })
        } else {
            Ok(())
        }
    }

    /// Checks shared by start, complete, fail and skip: the code exists, the build is
    /// open, the code is the current milestone, and the build is not waiting for a retry.
    fn expect_current(&self, state: StateCode) -> Result<(), Rejection> {
        self.expect_in_catalog(state)?;
        self.expect_not_terminal()?;
        let b = self.old;
        let name = b.state_name().to_owned();
        if state < b.state {
            return Err(Rejection::Behind {
                build: b.number.clone(),
                requested: state,
                current: b.state,
                name,
            });
        }
        if state > b.state {
            return Err(Rejection::Ahead {
                build: b.number.clone(),
                requested: state,
                current: b.state,
                name,
            });
        }
        if b.status == BuildStatus::Failed {
            return Err(Rejection::MustRetry { build: b.number.clone(), state: b.state, name });
        }
        Ok(())
    }

    fn expect_no_open_attempt(&self) -> Result<(), Rejection> {
        if self.old.attempt_open() {
            Err(Rejection::AttemptOpen {
                build: self.old.number.clone(),
                state: self.old.state,
                attempt: self.old.attempt,
            })
        } else {
            Ok(())
        }
    }

    /// Complete or fail without a `Start`: count a zero-length attempt. Returns when
    /// the attempt started.
    fn begin_implicit_attempt(&mut self) -> Timestamp {
        match self.b.attempt_started_at {
            Some(started) => started,
            None => {
                self.b.attempt += 1;
                self.b.attempt_started_at = Some(self.at);
                self.b.status = BuildStatus::Running;
                self.at
            }
        }
    }

    /// Ends the open attempt as failed: event plus failure record.
    fn close_failed(&mut self, actor: &str, failure: &FailureInfo, log: Option<String>, forced: bool) {
        let started = self.b.attempt_started_at.unwrap_or(self.at);
        let message = clean_text(&failure.message, MAX_MESSAGE_BYTES);
        let attempt = self.b.attempt;
        let state = self.b.state;
        let at = self.at;
        let e = self.event(EventKind::Failed, state, actor);
        e.attempt = attempt;
        e.started_at = Some(started);
        e.duration_ms = Some(millis_between(started, at));
        e.exit_code = failure.exit_code;
        e.message = Some(message.clone());
        e.log = log;
        e.forced = forced;
        self.b.failure_count += 1;
        let mut info = failure.clone();
        info.message = message;
        info.component = info.component.as_deref().and_then(non_empty);
        self.failures.push(FailureRecord {
            build_id: self.b.id,
            number: self.b.failure_count,
            state,
            attempt,
            at,
            info,
            resolved: false,
            resolution: None,
            resolved_at: None,
        });
        self.b.attempt_started_at = None;
        self.b.status = BuildStatus::Failed;
    }

    /// Success at the current milestone: move to the next one, or deliver at 100.
    fn advance(&mut self) {
        self.b.attempt_started_at = None;
        match self.b.catalog.next(self.b.state) {
            Some(next) => {
                self.b.state = next;
                self.b.attempt = 0;
                self.b.status = BuildStatus::Running;
            }
            None => {
                self.b.status = BuildStatus::Completed;
                self.b.ended_at = Some(self.at);
            }
        }
    }

    fn event(&mut self, kind: EventKind, state: StateCode, actor: &str) -> &mut HistoryEvent {
        self.b.history_len += 1;
        let actor = clean_text(actor, 256);
        self.events.push(HistoryEvent::new(self.b.history_len, self.at, kind, state, &actor));
        let last = self.events.len() - 1;
        &mut self.events[last]
    }

    fn finish(mut self) -> Outcome {
        self.b.version += 1;
        self.b.updated_at = self.at;
        Outcome { build: self.b, events: self.events, failures: self.failures }
    }
}
