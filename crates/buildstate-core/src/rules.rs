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
///
/// Serialized (tagged by `kind`) so that a client of the HTTP API gets back the same
/// rejection the server's store made, and branches and words it as a local one would.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    ReasonRequired { build: BuildNumber, action: ReasonAction },
}

/// The commands that need a reason (they undo work, so the history says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonAction {
    Rewind,
    Cancel,
}

impl std::fmt::Display for ReasonAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReasonAction::Rewind => "rewind",
            ReasonAction::Cancel => "cancel",
        })
    }
}

/// Applies `cmd` to `build` at time `at`.
///
/// A new build's first real milestone may be acted on directly: `start`, `complete`,
/// `fail` or `skip` of the milestone after 0, on a build nobody has started yet,
/// completes 0 first in the same transition, recorded as a `completed` event at 0 whose
/// message says so. Milestone 0 ("triggered") has happened once anything acts on the
/// build, so recording it by hand is ceremony; a code further on still has to wait (or
/// be reached through explicit skips), so no milestone is ever passed over unrecorded.
pub fn apply(build: &Build, cmd: &Command, at: Timestamp) -> Result<Outcome, Rejection> {
    let Some((first, actor)) = first_tracked(build, cmd) else {
        return apply_one(build, cmd, at);
    };
    let zero =
        Command::Complete { state: StateCode::INITIAL, actor: actor.to_owned(), exit_code: None, log: None };
    let mut done = apply_one(build, &zero, at)?;
    for e in &mut done.events {
        e.message = Some(format!("{IMPLICIT_COMPLETION}: the first tracked milestone was {first}"));
    }
    let then = apply_one(&done.build, cmd, at)?;
    let mut events = done.events;
    events.extend(then.events);
    // One command, one transition: the version moves by one, as for every command.
    let build = Build { version: build.version + 1, ..then.build };
    Ok(Outcome { build, events, failures: then.failures })
}

/// How the message of an implicit completion of 0 begins (no other `completed` event
/// carries a message, which is how replay tells it apart).
pub(crate) const IMPLICIT_COMPLETION: &str = "completed implicitly";

/// The milestone and actor of a command that acts on the first milestone after 0 of a
/// build that was never started (pending at 0, no attempt): 0 is completed implicitly.
fn first_tracked<'c>(build: &Build, cmd: &'c Command) -> Option<(StateCode, &'c str)> {
    let (state, actor) = match cmd {
        Command::Start { state, actor, .. }
        | Command::Complete { state, actor, .. }
        | Command::Fail { state, actor, .. }
        | Command::Skip { state, actor, .. } => (*state, actor.as_str()),
        _ => return None,
    };
    let fresh = build.state == StateCode::INITIAL
        && build.status == BuildStatus::Pending
        && build.attempt == 0
        && !build.attempt_open();
    (fresh && build.catalog.next(StateCode::INITIAL) == Some(state)).then_some((state, actor))
}

fn apply_one(build: &Build, cmd: &Command, at: Timestamp) -> Result<Outcome, Rejection> {
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
                    message: format!(
                        "attempt abandoned: {actor} started a new attempt over it (forced, or taking over from a runner that is gone)"
                    ),
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
                return Err(Rejection::ReasonRequired {
                    build: build.number.clone(),
                    action: ReasonAction::Rewind,
                });
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
                return Err(Rejection::ReasonRequired {
                    build: build.number.clone(),
                    action: ReasonAction::Cancel,
                });
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{BuildId, Milestone, Name, NewBuild, StateCatalog};

    fn code(n: i64) -> StateCode {
        StateCode::new(n).expect("test codes are in 0..=100")
    }

    fn at(i: i64) -> Timestamp {
        Timestamp::from_second(1_770_000_000 + i).expect("a valid test time")
    }

    fn fresh(catalog: StateCatalog) -> Build {
        let new = NewBuild {
            platform: Name::new("aws").expect("name"),
            os: Name::new("rhel-9.6").expect("name"),
            image_type: Name::new("base").expect("name"),
            number: None,
            catalog,
            created_by: "test".into(),
            ci_url: None,
            metadata: BTreeMap::new(),
        };
        let number = BuildNumber::new("rhel-9.6-base-aws-20260202-001").expect("number");
        Build::create(BuildId::generate(1_770_000_000_000, 7), number, new, at(0)).0
    }

    /// 0, 2, 5, …: a team's own first step inserted before kickstart.
    fn with_two() -> StateCatalog {
        let two =
            Milestone { code: code(2), name: "fetch".into(), meaning: String::new(), tool: String::new() };
        StateCatalog::default_catalog().with_inserted(vec![two]).expect("2 fits")
    }

    fn failure() -> FailureInfo {
        FailureInfo {
            failure_type: FailureType::interrupted(),
            class: FailureClass::Transient,
            component: None,
            message: "boom".into(),
            details: BTreeMap::new(),
            exit_code: Some(1),
        }
    }

    /// The four commands that act on a milestone, at `state`.
    fn acting(state: StateCode, kind: u8) -> Command {
        let actor = "ci".to_owned();
        match kind % 4 {
            0 => Command::Start { state, actor, log: None, force: false },
            1 => Command::Complete { state, actor, exit_code: Some(0), log: None },
            2 => Command::Fail { state, actor, failure: failure(), max_attempts: 3, log: None },
            _ => Command::Skip { state, actor, reason: "not here".into() },
        }
    }

    fn is_implicit_zero(e: &HistoryEvent) -> bool {
        e.kind == EventKind::Completed
            && e.state == StateCode::INITIAL
            && e.attempt == 1
            && e.message.as_deref().is_some_and(|m| m.starts_with(IMPLICIT_COMPLETION))
    }

    #[test]
    fn the_first_milestone_of_a_new_build_completes_0_implicitly() {
        let b = fresh(StateCatalog::default_catalog());
        let o = apply(&b, &acting(code(5), 0), at(1)).expect("start 5 on a new build");
        assert_eq!(o.events.len(), 2);
        assert!(is_implicit_zero(&o.events[0]), "{:?}", o.events[0]);
        assert_eq!(
            o.events[0].message.as_deref(),
            Some("completed implicitly: the first tracked milestone was 5")
        );
        assert_eq!((o.events[0].seq, o.events[1].seq), (2, 3));
        assert_eq!(
            (o.events[1].kind, o.events[1].state, o.events[1].attempt),
            (EventKind::Started, code(5), 1)
        );
        assert_eq!((o.build.state, o.build.status, o.build.attempt), (code(5), BuildStatus::Running, 1));
        assert_eq!(o.build.version, b.version + 1, "one command, one version");
        assert_eq!(o.build.history_len, 3);
        assert_eq!(o.build.started_at, Some(at(1)));
        assert_eq!(o.build.check_invariants(), Ok(()));

        let o = apply(&b, &acting(code(5), 1), at(1)).expect("complete 5 on a new build");
        assert_eq!((o.build.state, o.build.status), (code(10), BuildStatus::Running));
        assert_eq!(
            o.events.iter().map(|e| (e.kind, e.state)).collect::<Vec<_>>(),
            [(EventKind::Completed, StateCode::INITIAL), (EventKind::Completed, code(5))]
        );

        let o = apply(&b, &acting(code(5), 2), at(1)).expect("fail 5 on a new build");
        assert_eq!((o.build.state, o.build.status, o.build.attempt), (code(5), BuildStatus::Failed, 1));
        assert_eq!(o.failures.len(), 1);
        assert_eq!((o.failures[0].number, o.failures[0].state), (1, code(5)));

        let o = apply(&b, &acting(code(5), 3), at(1)).expect("skip 5 on a new build");
        assert_eq!(o.build.state, code(10));
        assert_eq!(o.events[1].kind, EventKind::Skipped);
    }

    #[test]
    fn only_the_milestone_after_0_of_a_never_started_build_counts() {
        let b = fresh(StateCatalog::default_catalog());
        for kind in 0..4 {
            let r = apply(&b, &acting(code(10), kind), at(1));
            assert!(matches!(r, Err(Rejection::Ahead { .. })), "{r:?}: 10 is not the first milestone");
        }
        // A custom first milestone: 2 is the one after 0, and 5 must wait.
        let custom = fresh(with_two());
        assert!(matches!(apply(&custom, &acting(code(5), 0), at(1)), Err(Rejection::Ahead { .. })));
        let o = apply(&custom, &acting(code(2), 0), at(1)).expect("start 2");
        assert!(o.events[0].message.as_deref().is_some_and(|m| m.ends_with("was 2")));

        // Started once, then rewound to 0: not a new build any more; 0 is tracked.
        let started = apply(&b, &acting(StateCode::INITIAL, 0), at(1)).expect("start 0").build;
        assert!(matches!(apply(&started, &acting(code(5), 0), at(2)), Err(Rejection::Ahead { .. })));
        let done = apply(&started, &acting(StateCode::INITIAL, 1), at(2)).expect("complete 0").build;
        let rewind = Command::Rewind { to: StateCode::INITIAL, actor: "ci".into(), reason: "again".into() };
        let back = apply(&done, &rewind, at(3)).expect("rewind").build;
        assert_eq!(back.status, BuildStatus::Running);
        assert!(matches!(apply(&back, &acting(code(5), 1), at(4)), Err(Rejection::Ahead { .. })));

        // Cancelled while new: terminal stays terminal.
        let cancel = Command::Cancel { actor: "ci".into(), reason: "no".into() };
        let cancelled = apply(&b, &cancel, at(1)).expect("cancel").build;
        assert!(matches!(apply(&cancelled, &acting(code(5), 0), at(2)), Err(Rejection::Terminal { .. })));
    }

    #[test]
    fn a_refused_first_milestone_completes_nothing() {
        // 0 and 100 only: skipping the first milestone would skip the delivery.
        let ends = |c: i64, n: &str| Milestone {
            code: code(c),
            name: n.into(),
            meaning: String::new(),
            tool: String::new(),
        };
        let b = fresh(StateCatalog::new(vec![ends(0, "initial"), ends(100, "delivered")]).expect("catalog"));
        assert!(matches!(
            apply(&b, &acting(StateCode::DELIVERED, 3), at(1)),
            Err(Rejection::SkipDelivery { .. })
        ));
        let o = apply(&b, &acting(StateCode::DELIVERED, 1), at(1)).expect("deliver a new build directly");
        assert_eq!((o.build.status, o.events.len()), (BuildStatus::Completed, 2));
        assert_eq!(o.build.check_invariants(), Ok(()));
    }

    proptest! {
        /// On a new build, any of the four commands at any code is accepted exactly at 0
        /// and at the first milestone after it; acting on the latter records 0 completed
        /// first, keeps the invariants, and moves the version by one.
        #[test]
        fn new_builds_accept_their_first_milestone(custom in any::<bool>(), raw in 0u8..=100, kind in 0u8..4) {
            let catalog = if custom { with_two() } else { StateCatalog::default_catalog() };
            let b = fresh(catalog);
            let first = b.catalog.next(StateCode::INITIAL).expect("a next milestone");
            let state = code(i64::from(raw));
            let cmd = acting(state, kind);
            match apply(&b, &cmd, at(1)) {
                Ok(o) => {
                    prop_assert!(state == StateCode::INITIAL || state == first, "{:?} accepted", cmd);
                    prop_assert_eq!(o.build.check_invariants(), Ok(()));
                    prop_assert_eq!(o.build.version, b.version + 1);
                    prop_assert_eq!(o.build.history_len, b.history_len + o.events.len() as u64);
                    prop_assert_eq!(is_implicit_zero(&o.events[0]), state == first);
                    prop_assert!(o.events.iter().skip(1).all(|e| e.state == state && e.message.as_deref().is_none_or(|m| !m.starts_with(IMPLICIT_COMPLETION))));
                }
                Err(r) => {
                    prop_assert!(state != StateCode::INITIAL && state != first, "{:?} refused: {}", cmd, r);
                }
            }
        }
    }
}
