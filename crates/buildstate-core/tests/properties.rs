//! Property tests of the transition rules (SPEC §2): for any sequence of commands, each
//! command is accepted or refused exactly as the rules state (an independent statement
//! of them, [`expected`], is the oracle), every build reached has one of the shapes the
//! rules claim reachable and every claimed shape is reached by replaying a generated
//! sequence, history is append-only, and terminal builds stay terminal unless rewound.
//!
//! Commands are generated against *code picks* ("the current milestone", "the n-th
//! milestone of the catalog", "any code 0..=100") that are resolved when the command is
//! applied, so that random sequences make real progress instead of being refused at the
//! first step; codes outside the catalog (7, 13, 99, …) are still generated on purpose.

use std::collections::BTreeMap;

use buildstate_core::{
    Build, BuildDocument, BuildId, BuildNumber, BuildParts, BuildStatus, Command, EventKind, FailureClass,
    FailureInfo, FailureRecord, FailureType, HistoryEvent, MetaKey, MetaValue, Milestone, Name, NewBuild,
    Rejection, StateCatalog, StateCode, apply, attempts,
};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

// ── fixtures ─────────────────────────────────────────────────────────────────────────

fn code(n: i64) -> StateCode {
    StateCode::new(n).expect("test codes are in 0..=100")
}

fn name(s: &str) -> Name {
    Name::new(s).expect("test names are valid")
}

/// Second `i` of the test clock: every command gets its own, later, time.
fn at(i: u64) -> Timestamp {
    Timestamp::from_second(1_770_000_000 + i as i64).expect("a valid test time")
}

fn default_catalog() -> StateCatalog {
    StateCatalog::default_catalog()
}

/// The default catalog with 12 and 97 inserted, as a team would extend it.
fn custom_catalog() -> StateCatalog {
    let m = |c: i64, n: &str| Milestone {
        code: code(c),
        name: n.into(),
        meaning: String::new(),
        tool: String::new(),
    };
    default_catalog()
        .with_inserted(vec![m(12, "hardening"), m(97, "sign")])
        .expect("12 and 97 fit between the default codes")
}

fn fresh(catalog: StateCatalog) -> (Build, HistoryEvent) {
    let new = NewBuild {
        platform: name("aws-commercial"),
        os: name("rhel-8.8"),
        image_type: name("base"),
        number: None,
        catalog,
        created_by: "proptest".into(),
        ci_url: None,
        metadata: BTreeMap::new(),
    };
    let number = BuildNumber::new("rhel-8.8-base-aws-commercial-20260212-001").expect("valid number");
    Build::create(BuildId::generate(1_770_000_000_000, 42), number, new, at(0))
}

// ── generated commands ───────────────────────────────────────────────────────────────

/// Which code a command names, resolved against the build when it is applied.
#[derive(Clone, Debug)]
enum Pick {
    /// The build's current milestone: what a well-behaved runner sends.
    Current,
    /// The milestone after the current one (a runner that is ahead of itself).
    Next,
    /// The `n`-th milestone of the catalog, modulo its length.
    Milestone(usize),
    /// Any code 0..=100, mostly not in the catalog.
    Raw(u8),
}

impl Pick {
    fn resolve(&self, b: &Build) -> StateCode {
        match *self {
            Pick::Current => b.state,
            Pick::Next => b.catalog.next(b.state).unwrap_or(b.state),
            Pick::Milestone(n) => {
                let codes: Vec<StateCode> = b.catalog.codes().collect();
                codes[n % codes.len()]
            }
            Pick::Raw(n) => code(i64::from(n)),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Start { pick: Pick, force: bool },
    Complete { pick: Pick, exit_code: Option<i32> },
    Fail { pick: Pick, failure: FailureInfo, max_attempts: u32 },
    Skip { pick: Pick, reason: String },
    Retry { reason: Option<String>, force: bool },
    Rewind { pick: Pick, reason: String },
    Cancel { reason: String },
    SetMeta { key: MetaKey, value: Option<MetaValue> },
}

impl Op {
    fn command(&self, b: &Build, step: usize) -> Command {
        let actor = format!("actor-{step}");
        match self {
            Op::Start { pick, force } => Command::Start {
                state: pick.resolve(b),
                actor,
                log: Some(format!("log/{step}")),
                force: *force,
            },
            Op::Complete { pick, exit_code } => {
                Command::Complete { state: pick.resolve(b), actor, exit_code: *exit_code, log: None }
            }
            Op::Fail { pick, failure, max_attempts } => Command::Fail {
                state: pick.resolve(b),
                actor,
                failure: failure.clone(),
                max_attempts: *max_attempts,
                log: None,
            },
            Op::Skip { pick, reason } => {
                Command::Skip { state: pick.resolve(b), actor, reason: reason.clone() }
            }
            Op::Retry { reason, force } => Command::Retry { actor, reason: reason.clone(), force: *force },
            Op::Rewind { pick, reason } => {
                Command::Rewind { to: pick.resolve(b), actor, reason: reason.clone() }
            }
            Op::Cancel { reason } => Command::Cancel { actor, reason: reason.clone() },
            Op::SetMeta { key, value } => Command::SetMeta { key: key.clone(), value: value.clone() },
        }
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => Just(Pick::Current),
        1 => Just(Pick::Next),
        1 => (0usize..32).prop_map(Pick::Milestone),
        2 => (0u8..=100).prop_map(Pick::Raw),
    ]
}

/// Empty, blank and real reasons, including hostile text.
fn reason() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("   \t ".to_owned()),
        Just("mirror was down".to_owned()),
        Just("it's \"quoted\"; DROP TABLE builds; --\0\x1b[31m".to_owned()),
        "[a-z ]{0,12}",
    ]
}

fn failure() -> impl Strategy<Value = FailureInfo> {
    let types: Vec<&'static str> = FailureType::WELL_KNOWN.to_vec();
    (
        proptest::sample::select(types),
        prop_oneof![Just(FailureClass::Transient), Just(FailureClass::Persistent)],
        proptest::option::of("[a-z]{1,8}"),
        reason(),
        proptest::option::of(-1i32..130),
    )
        .prop_map(|(ty, class, component, message, exit_code)| FailureInfo {
            failure_type: ty.parse().expect("well-known types parse"),
            class,
            component,
            message,
            details: BTreeMap::from([("task".to_owned(), serde_json::json!("install agent"))]),
            exit_code,
        })
}

fn meta() -> impl Strategy<Value = (MetaKey, Option<MetaValue>)> {
    (0usize..3, proptest::option::of("[ -~]{0,16}")).prop_map(|(k, v)| {
        let key = MetaKey::new(["ami/us-east-1", "ticket", "owner"][k]).expect("valid key");
        let value = v.map(|v| MetaValue::new(&key, &v).expect("short value"));
        (key, value)
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (pick(), proptest::bool::weighted(0.2)).prop_map(|(pick, force)| Op::Start { pick, force }),
        6 => (pick(), proptest::option::of(0i32..3)).prop_map(|(pick, exit_code)| Op::Complete { pick, exit_code }),
        2 => (pick(), failure(), 1u32..=4).prop_map(|(pick, failure, max_attempts)| Op::Fail { pick, failure, max_attempts }),
        1 => (pick(), reason()).prop_map(|(pick, reason)| Op::Skip { pick, reason }),
        2 => (proptest::option::of(reason()), any::<bool>()).prop_map(|(reason, force)| Op::Retry { reason, force }),
        1 => (pick(), reason()).prop_map(|(pick, reason)| Op::Rewind { pick, reason }),
        1 => reason().prop_map(|reason| Op::Cancel { reason }),
        1 => meta().prop_map(|(key, value)| Op::SetMeta { key, value }),
    ]
}

/// A pipeline that mostly works: completes the current milestone most of the time, so
/// that sequences reach delivery (and what may follow it: rewinds, refused commands).
fn progress_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => proptest::option::of(0i32..3).prop_map(|exit_code| Op::Complete { pick: Pick::Current, exit_code }),
        2 => Just(Op::Start { pick: Pick::Current, force: false }),
        1 => (pick(), failure(), 1u32..=4).prop_map(|(pick, failure, max_attempts)| Op::Fail { pick, failure, max_attempts }),
        1 => (proptest::option::of(reason()), any::<bool>()).prop_map(|(reason, force)| Op::Retry { reason, force }),
        1 => op(),
    ]
}

/// Up to 60 commands: either anything at all, or a mostly working pipeline.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![prop::collection::vec(op(), 0..=60), prop::collection::vec(progress_op(), 0..=60)]
}

/// `false`: the default catalog; `true`: the custom one with 12 and 97 (a flag rather
/// than the catalog itself keeps shrunk failures readable).
fn catalog(custom: bool) -> StateCatalog {
    if custom { custom_catalog() } else { default_catalog() }
}

// ── the run of one sequence ──────────────────────────────────────────────────────────

/// Everything a sequence produced, for the properties to inspect.
struct Run {
    initial: Build,
    /// The build after each accepted command.
    builds: Vec<Build>,
    history: Vec<HistoryEvent>,
    failures: Vec<FailureRecord>,
}

/// Applies the ops one by one, checking the per-step properties; returns the run.
fn run(catalog: StateCatalog, ops: &[Op]) -> Result<Run, TestCaseError> {
    let claimed = claimed_shapes(&catalog);
    let (initial, created) = fresh(catalog);
    let mut build = initial.clone();
    let mut r = Run { initial, builds: Vec::new(), history: vec![created], failures: Vec::new() };
    for (step, op) in ops.iter().enumerate() {
        let cmd = op.command(&build, step);
        let when = at(step as u64 + 1);
        let before = build.clone();
        // `apply` takes `&Build`, so a refusal cannot change the caller's build: the type
        // system says so. What can go wrong is refusing a command the rules accept,
        // accepting one they refuse, or refusing it for another reason: the oracle says.
        match (apply(&build, &cmd, when), expected(&before, &cmd)) {
            (Err(rejection), Err(refusal)) => {
                prop_assert_eq!(
                    Refusal::of(&rejection),
                    refusal,
                    "{:?} on {} was refused for the wrong reason: {}",
                    cmd,
                    describe(&before),
                    rejection
                );
                prop_assert!(!rejection.to_string().is_empty());
            }
            (Err(rejection), Ok(shape)) => {
                return Err(TestCaseError::fail(format!(
                    "{cmd:?} on {} was refused ({rejection}); the rules accept it, giving {shape:?}",
                    describe(&before)
                )));
            }
            (Ok(outcome), Err(refusal)) => {
                return Err(TestCaseError::fail(format!(
                    "{cmd:?} on {} was accepted, giving {}; the rules refuse it ({refusal:?})",
                    describe(&before),
                    describe(&outcome.build)
                )));
            }
            (Ok(outcome), Ok(shape)) => {
                let next = outcome.build;
                prop_assert_eq!(Shape::of(&next), shape, "{:?} on {}", cmd, describe(&before));
                prop_assert!(
                    claimed.contains(&shape),
                    "{:?} reached {:?}, which the rules do not claim",
                    cmd,
                    shape
                );
                prop_assert_eq!(next.check_invariants(), Ok(()), "after {:?}", cmd);
                prop_assert!(next.catalog.contains(next.state), "state {} is not a catalog code", next.state);
                prop_assert_eq!(next.version, before.version + 1, "every accepted command bumps the version");
                prop_assert_eq!(next.updated_at, when);
                prop_assert_eq!(&next.catalog, &before.catalog, "the catalog of a build never changes");
                prop_assert_eq!(next.id, before.id);

                // History: the new events continue the sequence without gaps.
                for (i, e) in outcome.events.iter().enumerate() {
                    prop_assert_eq!(e.seq, before.history_len + 1 + i as u64, "event seq after {:?}", cmd);
                    prop_assert_eq!(e.at, when);
                    prop_assert!(next.catalog.contains(e.state));
                }
                prop_assert_eq!(next.history_len, before.history_len + outcome.events.len() as u64);
                for (i, f) in outcome.failures.iter().enumerate() {
                    prop_assert_eq!(f.number, before.failure_count + 1 + i as u32);
                    prop_assert_eq!(f.build_id, next.id);
                    prop_assert!(!f.resolved);
                }
                prop_assert_eq!(next.failure_count, before.failure_count + outcome.failures.len() as u32);

                // Monotonic progress: only a rewind moves back.
                if next.state < before.state {
                    prop_assert!(matches!(cmd, Command::Rewind { .. }), "{:?} moved the build back", cmd);
                }
                // Terminal builds stay terminal, except through a rewind.
                if before.status.is_terminal() && !matches!(cmd, Command::Rewind { .. }) {
                    prop_assert!(
                        matches!(cmd, Command::SetMeta { .. }),
                        "{:?} was accepted on a terminal build",
                        cmd
                    );
                    prop_assert_eq!(next.status, before.status);
                    prop_assert_eq!(next.state, before.state);
                }
                // Metadata is the only thing SetMeta touches, and nothing else touches it.
                if let Command::SetMeta { .. } = cmd {
                    prop_assert!(outcome.events.is_empty() && outcome.failures.is_empty());
                    let mut same = next.clone();
                    same.metadata = before.metadata.clone();
                    same.version = before.version;
                    same.updated_at = before.updated_at;
                    prop_assert_eq!(&same, &before, "set-meta changed more than metadata");
                } else {
                    prop_assert_eq!(&next.metadata, &before.metadata, "{} changed metadata", cmd.name());
                }
                if next.needs_intervention {
                    prop_assert_eq!(next.status, BuildStatus::Failed, "needs intervention implies failed");
                }

                r.history.extend(outcome.events);
                r.failures.extend(outcome.failures);
                r.builds.push(next.clone());
                build = next;
            }
        }
        check_history(&build, &r.history, &r.failures)?;
    }
    Ok(r)
}

/// Properties of the whole history against the build it produced.
fn check_history(
    b: &Build,
    history: &[HistoryEvent],
    failures: &[FailureRecord],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(b.history_len, history.len() as u64);
    for (i, e) in history.iter().enumerate() {
        prop_assert_eq!(e.seq, i as u64 + 1, "history seq runs 1..n without gaps");
    }
    prop_assert_eq!(history[0].kind, EventKind::Created);
    prop_assert_eq!(b.failure_count as usize, failures.len());
    let failed_events = history.iter().filter(|e| e.kind == EventKind::Failed).count();
    prop_assert_eq!(failed_events, failures.len(), "one failure record per failed attempt");
    for f in failures {
        prop_assert!(f.attempt >= 1, "failure {} has attempt 0", f.number);
    }
    // The attempt counter is what the history says: the highest attempt number at the
    // current state since the build last arrived there.
    let arrival = history
        .iter()
        .rposition(|e| match e.kind {
            EventKind::Created | EventKind::Rewound => true,
            EventKind::Completed | EventKind::Skipped => e.state != b.state,
            _ => false,
        })
        .unwrap_or(0);
    let counted = history[arrival + 1..]
        .iter()
        .filter(|e| e.state == b.state)
        .filter(|e| matches!(e.kind, EventKind::Started | EventKind::Completed | EventKind::Failed))
        .map(|e| e.attempt)
        .max()
        .unwrap_or(0);
    prop_assert_eq!(b.attempt, counted, "attempt counter of {} disagrees with history", b.number);
    Ok(())
}

// ── the rules, stated again: the oracle ──────────────────────────────────────────────

/// What a build looks like to the rules: how far, how it stands, whether a person must
/// decide, whether an attempt is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    state: StateCode,
    status: BuildStatus,
    needs_intervention: bool,
    open: bool,
}

impl Shape {
    fn of(b: &Build) -> Shape {
        Shape {
            state: b.state,
            status: b.status,
            needs_intervention: b.needs_intervention,
            open: b.attempt_open(),
        }
    }
}

fn describe(b: &Build) -> String {
    format!("{:?} (attempt {}, started {})", Shape::of(b), b.attempt, b.started_at.is_some())
}

/// The kinds of refusal, one per [`Rejection`] variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    NotInCatalog,
    Terminal,
    Behind,
    Ahead,
    MustRetry,
    AttemptOpen,
    NotFailed,
    NeedsIntervention,
    RewindForward,
    SkipDelivery,
    ReasonRequired,
}

impl Refusal {
    /// Exhaustive: a new kind of rejection does not compile until the oracle knows it.
    fn of(r: &Rejection) -> Refusal {
        match r {
            Rejection::NotInCatalog { .. } => Refusal::NotInCatalog,
            Rejection::Terminal { .. } => Refusal::Terminal,
            Rejection::Behind { .. } => Refusal::Behind,
            Rejection::Ahead { .. } => Refusal::Ahead,
            Rejection::MustRetry { .. } => Refusal::MustRetry,
            Rejection::AttemptOpen { .. } => Refusal::AttemptOpen,
            Rejection::NotFailed { .. } => Refusal::NotFailed,
            Rejection::NeedsIntervention { .. } => Refusal::NeedsIntervention,
            Rejection::RewindForward { .. } => Refusal::RewindForward,
            Rejection::SkipDelivery { .. } => Refusal::SkipDelivery,
            Rejection::ReasonRequired { .. } => Refusal::ReasonRequired,
        }
    }
}

/// What the rules (docs/ARCHITECTURE.md, "The state machine") say `cmd` does to `b`:
/// refused, and why, or accepted, and the shape it leaves. Written from the rules as
/// documented, not from `apply`, and checked against `apply` after every generated command.
fn expected(b: &Build, cmd: &Command) -> Result<Shape, Refusal> {
    use BuildStatus::{Cancelled, Completed, Failed, Pending, Running};
    let shape = |state, status, needs_intervention, open| Shape { state, status, needs_intervention, open };
    let blank = |s: &str| s.trim().is_empty();
    // Nobody has acted on the build yet: acting on the milestone after 0 completes 0 first.
    let fresh = b.state == StateCode::INITIAL && b.status == Pending && b.attempt == 0 && !b.attempt_open();
    // Start, complete, fail and skip name the current milestone of an open build that is
    // not waiting for a retry; a code outside the catalog is refused first.
    let acting = |s: StateCode| -> Result<(), Refusal> {
        if !b.catalog.contains(s) {
            Err(Refusal::NotInCatalog)
        } else if fresh && b.catalog.next(StateCode::INITIAL) == Some(s) {
            Ok(())
        } else if b.status.is_terminal() {
            Err(Refusal::Terminal)
        } else if s < b.state {
            Err(Refusal::Behind)
        } else if s > b.state {
            Err(Refusal::Ahead)
        } else if b.status == Failed {
            Err(Refusal::MustRetry)
        } else {
            Ok(())
        }
    };
    // Success at `s`: the next milestone, or delivery at the last.
    let past = |s: StateCode| match b.catalog.next(s) {
        Some(next) => shape(next, Running, false, false),
        None => shape(s, Completed, false, false),
    };
    match cmd {
        Command::Start { state, force, .. } => {
            acting(*state)?;
            if b.attempt_open() && !force {
                return Err(Refusal::AttemptOpen);
            }
            Ok(shape(*state, Running, false, true))
        }
        Command::Complete { state, .. } => {
            acting(*state)?;
            Ok(past(*state))
        }
        Command::Fail { state, failure, max_attempts, .. } => {
            acting(*state)?;
            // The failed attempt is the open one, or a new zero-length one; the first
            // attempt at the milestone after 0 when 0 is completed on the way.
            let attempt = if b.state != *state {
                1
            } else if b.attempt_open() {
                b.attempt
            } else {
                b.attempt + 1
            };
            let person = failure.class == FailureClass::Persistent || attempt >= (*max_attempts).max(1);
            Ok(shape(*state, Failed, person, false))
        }
        Command::Skip { state, .. } => {
            acting(*state)?;
            if *state == StateCode::DELIVERED {
                return Err(Refusal::SkipDelivery);
            }
            if b.attempt_open() {
                return Err(Refusal::AttemptOpen);
            }
            Ok(past(*state))
        }
        Command::Retry { force, .. } => {
            if b.status.is_terminal() {
                Err(Refusal::Terminal)
            } else if b.status != Failed {
                Err(Refusal::NotFailed)
            } else if b.needs_intervention && !force {
                Err(Refusal::NeedsIntervention)
            } else {
                Ok(shape(b.state, Running, false, false))
            }
        }
        Command::Rewind { to, reason, .. } => {
            if !b.catalog.contains(*to) {
                Err(Refusal::NotInCatalog)
            } else if *to > b.state {
                Err(Refusal::RewindForward)
            } else if blank(reason) {
                Err(Refusal::ReasonRequired)
            } else {
                // Pending again only if it never started; otherwise running, no attempt.
                Ok(shape(*to, if b.started_at.is_some() { Running } else { Pending }, false, false))
            }
        }
        Command::Cancel { reason, .. } => {
            if b.status.is_terminal() {
                Err(Refusal::Terminal)
            } else if blank(reason) {
                Err(Refusal::ReasonRequired)
            } else {
                Ok(shape(b.state, Cancelled, false, false))
            }
        }
        Command::SetMeta { .. } => Ok(Shape::of(b)),
    }
}

/// Every shape the rules claim a build of `catalog` can reach: pending only at 0 before
/// anything ran; at every milestone running (with or without an open attempt), failed
/// (waiting for a retry, or for a person) and cancelled; completed only at 100.
/// `run` checks that no generated sequence reaches another shape;
/// `every_claimed_shape_is_reached` that each of these is reached.
fn claimed_shapes(catalog: &StateCatalog) -> Vec<Shape> {
    use BuildStatus::{Cancelled, Completed, Failed, Pending, Running};
    let shape = |state, status, needs_intervention, open| Shape { state, status, needs_intervention, open };
    let mut all = vec![shape(StateCode::INITIAL, Pending, false, false)];
    for c in catalog.codes() {
        all.extend([
            shape(c, Running, false, true),
            shape(c, Running, false, false),
            shape(c, Failed, false, false),
            shape(c, Failed, true, false),
            shape(c, Cancelled, false, false),
        ]);
    }
    all.push(shape(StateCode::DELIVERED, Completed, false, false));
    all
}

// ── sequences generated for a target shape ───────────────────────────────────────────

/// How a planned sequence passes a milestone (or ends at its target): the plain way or
/// with a detour that must not change where the build ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detour {
    Plain,
    /// Start, then complete (or fail, at the target).
    Started,
    /// A transient failure, a retry, then on.
    FailedOnce,
    Skipped,
    /// Start, start again with `force` (the first attempt is abandoned), then on.
    Abandoned,
    Meta,
    /// Complete, rewind back to the milestone, complete again.
    Rewound,
    /// At 0 of a fresh build: say nothing, the next milestone's command completes 0.
    ImplicitZero,
}

fn detour() -> impl Strategy<Value = Detour> {
    proptest::sample::select(vec![
        Detour::Plain,
        Detour::Started,
        Detour::FailedOnce,
        Detour::Skipped,
        Detour::Abandoned,
        Detour::Meta,
        Detour::Rewound,
        Detour::ImplicitZero,
    ])
}

/// A command sequence that takes a fresh build of `catalog` to `target`, built from the
/// rules as documented (without asking `apply`), taking `detours` in turn.
fn plan(catalog: &StateCatalog, target: Shape, detours: &[Detour]) -> Vec<Command> {
    use BuildStatus::{Cancelled, Completed, Failed, Pending, Running};
    let a = || "planner".to_owned();
    let start = |s, force| Command::Start { state: s, actor: a(), log: None, force };
    let complete = |s| Command::Complete { state: s, actor: a(), exit_code: Some(0), log: None };
    let fail = |s, class, max_attempts| Command::Fail {
        state: s,
        actor: a(),
        failure: FailureInfo {
            failure_type: FailureType::interrupted(),
            class,
            component: None,
            message: "planned".into(),
            details: BTreeMap::new(),
            exit_code: Some(1),
        },
        max_attempts,
        log: None,
    };
    let retry = || Command::Retry { actor: a(), reason: None, force: false };
    let rewind = |s| Command::Rewind { to: s, actor: a(), reason: "planned".into() };
    let cancel = || Command::Cancel { actor: a(), reason: "planned".into() };
    let meta = || {
        let key = MetaKey::new("ticket").expect("valid key");
        let value = MetaValue::new(&key, "T-1").expect("short value");
        Command::SetMeta { key, value: Some(value) }
    };
    let transient = FailureClass::Transient;
    let mut turn = detours.iter().copied().cycle();
    let mut next = move || turn.next().unwrap_or(Detour::Plain);

    let mut out = Vec::new();
    let mut implicit_zero = false;
    for m in catalog.codes().take_while(|c| *c < target.state) {
        match next() {
            Detour::Plain => out.push(complete(m)),
            Detour::Started => out.extend([start(m, false), complete(m)]),
            Detour::FailedOnce => out.extend([fail(m, transient, 5), retry(), complete(m)]),
            Detour::Skipped => out.push(Command::Skip { state: m, actor: a(), reason: "planned".into() }),
            Detour::Abandoned => out.extend([start(m, false), start(m, true), complete(m)]),
            Detour::Meta => out.extend([meta(), complete(m)]),
            Detour::Rewound => out.extend([complete(m), rewind(m), complete(m)]),
            Detour::ImplicitZero if m == StateCode::INITIAL => implicit_zero = true,
            Detour::ImplicitZero => out.push(complete(m)),
        }
    }
    let t = target.state;
    let end: Vec<Command> = match (target.status, target.needs_intervention, target.open, next()) {
        (Pending, _, _, Detour::Rewound) => vec![cancel(), rewind(StateCode::INITIAL)],
        (Pending, _, _, Detour::Meta) => vec![meta()],
        (Pending, ..) => vec![],
        (Running, _, true, Detour::Abandoned) => vec![start(t, false), start(t, true)],
        (Running, _, true, _) => vec![start(t, false)],
        (Running, _, false, Detour::Rewound) => vec![complete(t), rewind(t)],
        (Running, _, false, d) if t == StateCode::INITIAL || d == Detour::FailedOnce => {
            vec![start(t, false), fail(t, transient, 5), retry()]
        }
        (Running, _, false, _) => vec![],
        (Failed, false, _, Detour::FailedOnce) => vec![fail(t, transient, 5), retry(), fail(t, transient, 5)],
        (Failed, false, _, Detour::Started) => vec![start(t, false), fail(t, transient, 5)],
        (Failed, false, ..) => vec![fail(t, transient, 5)],
        (Failed, true, _, Detour::FailedOnce) => vec![fail(t, transient, 1)],
        (Failed, true, _, Detour::Started) => vec![start(t, false), fail(t, FailureClass::Persistent, 5)],
        (Failed, true, ..) => vec![fail(t, FailureClass::Persistent, 5)],
        (Cancelled, _, _, Detour::Started) => vec![start(t, false), cancel()],
        (Cancelled, ..) => vec![cancel()],
        (Completed, _, _, Detour::Started) => vec![start(t, false), complete(t)],
        (Completed, ..) => vec![complete(t)],
    };
    out.extend(end);
    // Leaving 0 unsaid works only if the next command that moves the build acts on the
    // milestone after 0; otherwise 0 is completed as usual.
    let first = catalog.next(StateCode::INITIAL);
    let acts_first = out.iter().find(|c| !matches!(c, Command::SetMeta { .. })).is_some_and(|c| match c {
        Command::Start { state, .. }
        | Command::Complete { state, .. }
        | Command::Fail { state, .. }
        | Command::Skip { state, .. } => Some(*state) == first,
        _ => false,
    });
    if implicit_zero && !acts_first {
        out.insert(0, complete(StateCode::INITIAL));
    }
    out
}

/// Applies `commands` to a fresh build of `catalog`; each must be accepted, agree with
/// the oracle and keep the invariants. Returns the build they lead to.
fn replay(catalog: StateCatalog, commands: &[Command]) -> Result<Build, TestCaseError> {
    let (mut b, _) = fresh(catalog);
    for (i, cmd) in commands.iter().enumerate() {
        let predicted = expected(&b, cmd);
        let outcome = apply(&b, cmd, at(i as u64 + 1)).map_err(|e| {
            TestCaseError::fail(format!("command {i} of {commands:?}, {cmd:?}, was refused: {e}"))
        })?;
        prop_assert_eq!(predicted, Ok(Shape::of(&outcome.build)), "{:?} on {}", cmd, describe(&b));
        prop_assert_eq!(outcome.build.check_invariants(), Ok(()));
        b = outcome.build;
    }
    Ok(b)
}

fn config() -> ProptestConfig {
    // `WithSource`: the seeds of failures found so far live in
    // `tests/properties.proptest-regressions`, next to this file, and are replayed before
    // any new case (`the_regressions_file_is_replayed` proves it). The default,
    // `SourceParallel`, looks for a `lib.rs` or `main.rs` above the source file, which an
    // integration test does not have, and only falls back to this path with a warning.
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Invariants, append-only history, terminal stays terminal, monotonic state, and
    /// rejections that change nothing — checked after every command of every sequence.
    #[test]
    fn every_sequence_keeps_the_rules(custom in any::<bool>(), ops in ops()) {
        run(catalog(custom), &ops)?;
    }

    /// Reachability, the other way round: every shape the rules claim reachable
    /// ([`claimed_shapes`]) is reached by replaying a sequence generated for it, with
    /// random detours on the way (attempts started and abandoned, failures retried,
    /// milestones skipped, rewinds, metadata, 0 completed implicitly). Every command of
    /// the sequence must be accepted, and the build must end in exactly that shape.
    #[test]
    fn every_claimed_shape_is_reached(
        custom in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        detours in prop::collection::vec(detour(), 1..=24),
    ) {
        let catalog = catalog(custom);
        let shapes = claimed_shapes(&catalog);
        let target = shapes[pick.index(shapes.len())];
        let commands = plan(&catalog, target, &detours);
        let reached = replay(catalog, &commands)?;
        prop_assert_eq!(Shape::of(&reached), target, "after {:?}", commands);
    }

    /// Every reachable build exports to a document that parses back to the same parts.
    #[test]
    fn reachable_builds_export_and_import_losslessly(custom in any::<bool>(), ops in ops()) {
        let r = run(catalog(custom), &ops)?;
        let build = r.builds.last().cloned().unwrap_or(r.initial);
        let parts = BuildParts {
            build,
            provider: Some("aws".into()),
            history: r.history,
            failures: r.failures,
            artifacts: Vec::new(),
        };
        let doc = BuildDocument::from_parts(parts.clone());
        let text = serde_json::to_string_pretty(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(BuildDocument::parse(&text), Ok(parts));
    }

    /// Terminal builds (delivered or cancelled) refuse every command but a rewind and
    /// set-meta, from wherever a random sequence left them.
    #[test]
    fn terminal_builds_stay_terminal_unless_rewound(
        custom in any::<bool>(),
        ops in ops(),
        deliver in any::<bool>(),
        probes in prop::collection::vec(op(), 1..=20),
    ) {
        let r = run(catalog(custom), &ops)?;
        let mut b = r.builds.last().cloned().unwrap_or(r.initial);
        let mut t = 1_000;
        while !b.status.is_terminal() {
            t += 1;
            let cmd = if !deliver {
                Command::Cancel { actor: "t".into(), reason: "stop".into() }
            } else if b.status == BuildStatus::Failed {
                Command::Retry { actor: "t".into(), reason: None, force: true }
            } else {
                Command::Complete { state: b.state, actor: "t".into(), exit_code: None, log: None }
            };
            b = apply(&b, &cmd, at(t)).map_err(|e| TestCaseError::fail(format!("driving to terminal: {e}")))?.build;
        }
        for (i, probe) in probes.iter().enumerate() {
            let cmd = probe.command(&b, i);
            match (apply(&b, &cmd, at(t + 1 + i as u64)), &cmd) {
                (Ok(o), Command::Rewind { .. }) => {
                    prop_assert!(!o.build.status.is_terminal(), "a rewind reopens the build");
                    prop_assert_eq!(o.build.ended_at, None);
                }
                (Ok(o), Command::SetMeta { .. }) => prop_assert_eq!((o.build.status, o.build.state), (b.status, b.state)),
                (Ok(o), _) => prop_assert!(false, "{:?} was accepted on a {} build: {:?}", cmd, b.status, o.build.status),
                (Err(Rejection::Terminal { .. } | Rejection::NotInCatalog { .. }), _) => {}
                (Err(Rejection::ReasonRequired { .. } | Rejection::RewindForward { .. }), Command::Rewind { .. }) => {}
                (Err(e), _) => prop_assert!(false, "{:?} on a {} build refused for the wrong reason: {}", cmd, b.status, e),
            }
        }
    }

    /// Derived attempts agree with the build: when no attempt is open, the history shows
    /// no attempt still `started` (an attempt cut short by cancel or rewind must be closed).
    #[test]
    fn derived_attempts_agree_with_the_build(custom in any::<bool>(), ops in ops()) {
        let r = run(catalog(custom), &ops)?;
        let build = r.builds.last().cloned().unwrap_or(r.initial);
        let derived = attempts(&r.history);
        let open: Vec<_> = derived.iter().filter(|a| a.ended_at.is_none()).collect();
        if build.attempt_open() {
            prop_assert_eq!(open.len(), 1, "exactly one open attempt: {:?}", open);
            prop_assert_eq!((open[0].state, open[0].number), (build.state, build.attempt));
        } else {
            prop_assert!(open.is_empty(), "build {} ({}) has no open attempt, but its history shows {:?}", build.state, build.status, open);
        }
    }
}

// ── specific scenarios ───────────────────────────────────────────────────────────────

fn ok(b: &Build, cmd: Command, t: u64) -> Build {
    apply(b, &cmd, at(t)).unwrap_or_else(|e| panic!("{} must be accepted: {e}", cmd.name())).build
}

fn complete(c: i64) -> Command {
    Command::Complete { state: code(c), actor: "t".into(), exit_code: Some(0), log: None }
}

fn fail(c: i64, class: FailureClass, max_attempts: u32) -> Command {
    Command::Fail {
        state: code(c),
        actor: "t".into(),
        failure: FailureInfo {
            failure_type: "ansible".parse().expect("valid type"),
            class,
            component: Some("hardening".into()),
            message: "task failed".into(),
            details: BTreeMap::new(),
            exit_code: Some(2),
        },
        max_attempts,
        log: None,
    }
}

fn retry(force: bool) -> Command {
    Command::Retry { actor: "t".into(), reason: Some("try again".into()), force }
}

fn at_state(catalog: StateCatalog, c: i64) -> Build {
    let (mut b, _) = fresh(catalog);
    let mut t = 1;
    while b.state != code(c) {
        b = ok(&b, Command::Complete { state: b.state, actor: "t".into(), exit_code: None, log: None }, t);
        t += 1;
    }
    b
}

#[test]
fn three_failures_at_25_with_max_3_need_a_person() {
    let mut b = at_state(default_catalog(), 25);
    for attempt in 1..=3 {
        b = ok(&b, fail(25, FailureClass::Transient, 3), 100 + u64::from(attempt) * 2);
        assert_eq!((b.state, b.status, b.attempt), (code(25), BuildStatus::Failed, attempt));
        assert_eq!(b.needs_intervention, attempt == 3, "attempt {attempt}");
        if attempt < 3 {
            b = ok(&b, retry(false), 101 + u64::from(attempt) * 2);
            assert_eq!(b.status, BuildStatus::Running);
        }
    }
    assert!(matches!(
        apply(&b, &retry(false), at(200)),
        Err(Rejection::NeedsIntervention { attempts: 3, .. })
    ));
    let forced = apply(&b, &retry(true), at(201)).expect("a forced retry is accepted");
    assert_eq!(forced.events.len(), 1);
    assert!(forced.events[0].forced, "the override is recorded");
    assert_eq!((forced.build.status, forced.build.needs_intervention), (BuildStatus::Running, false));
}

#[test]
fn a_persistent_failure_needs_a_person_at_once() {
    let b = at_state(default_catalog(), 25);
    let failed = ok(&b, fail(25, FailureClass::Persistent, 4), 100);
    assert_eq!(failed.attempt, 1);
    assert!(failed.needs_intervention);
    assert!(matches!(apply(&failed, &retry(false), at(101)), Err(Rejection::NeedsIntervention { .. })));
}

#[test]
fn a_failure_never_rolls_back_and_a_retry_resumes_where_it_failed() {
    let b = at_state(default_catalog(), 45);
    let failed = ok(&b, fail(45, FailureClass::Transient, 3), 100);
    assert_eq!(failed.state, code(45));
    let retried = ok(&failed, retry(false), 101);
    let done = ok(&retried, complete(45), 102);
    assert_eq!((done.state, done.status), (code(50), BuildStatus::Running));
}

#[test]
fn inserted_codes_are_milestones_of_their_catalog_only() {
    let default = at_state(default_catalog(), 10);
    let custom = at_state(custom_catalog(), 10);
    assert!(matches!(apply(&default, &complete(12), at(50)), Err(Rejection::NotInCatalog { .. })));
    assert!(matches!(apply(&custom, &complete(12), at(50)), Err(Rejection::Ahead { .. })));
    let custom = ok(&custom, complete(10), 50);
    assert_eq!(custom.state, code(12), "10 is followed by the inserted 12");
    let custom = at_state(custom_catalog(), 97);
    assert_eq!(ok(&custom, complete(97), 60).state, StateCode::DELIVERED);
}

#[test]
fn rewind_reopens_a_delivered_build_and_nothing_else_does() {
    let b = at_state(default_catalog(), 100);
    let done = ok(&b, complete(100), 100);
    assert_eq!(done.status, BuildStatus::Completed);
    for cmd in [complete(100), retry(true), Command::Cancel { actor: "t".into(), reason: "stop".into() }] {
        assert!(matches!(apply(&done, &cmd, at(101)), Err(Rejection::Terminal { .. })), "{cmd:?}");
    }
    let back =
        ok(&done, Command::Rewind { to: code(90), actor: "t".into(), reason: "re-validate".into() }, 102);
    assert_eq!((back.state, back.status, back.ended_at), (code(90), BuildStatus::Running, None));
}

/// Names may be 64 characters each, so the generated build number of the longest
/// (os, image type, platform) is 3×64 + 8 (date) + 3 (sequence) + 4 dashes = 207
/// characters: it must still be a valid build number, or such a build cannot be created.
#[test]
fn the_longest_names_still_make_a_valid_build_number() {
    let longest = "a".repeat(64);
    assert!(Name::new(&longest).is_ok(), "64-character names are valid");
    let stem = BuildNumber::stem(&longest, &longest, &longest, "20260212");
    let number = BuildNumber::with_sequence(&stem, 1);
    assert!(number.is_ok(), "the generated number of valid names is refused: {number:?}");
}

/// `MetaValue` promises cleaned text of at most 4 KiB; reading one from JSON (an
/// imported document) must keep that promise rather than bypass `MetaValue::new`.
#[test]
fn metadata_values_read_from_json_follow_the_text_policy() {
    let key = MetaKey::new("k").expect("valid key");
    let raw = "a\u{0}b\u{1b}[31m";
    let built = MetaValue::new(&key, raw).expect("short value");
    let json = serde_json::to_string(raw).expect("a string serializes");
    // Refusing the value is also within the policy; accepting it raw is not.
    if let Ok(read) = serde_json::from_str::<MetaValue>(&json) {
        assert_eq!(read, built, "a value read from JSON keeps raw control characters");
    }
    let too_long = serde_json::to_string(&"x".repeat(5000)).expect("a string serializes");
    assert!(
        serde_json::from_str::<MetaValue>(&too_long).is_err(),
        "a 5000-byte value read from JSON is accepted"
    );
}

/// Every claimed shape of both catalogs, by every kind of detour: the sampled property
/// above may miss a shape in a run; this never does.
#[test]
fn every_claimed_shape_is_reached_by_every_detour() {
    let kinds = [
        Detour::Plain,
        Detour::Started,
        Detour::FailedOnce,
        Detour::Skipped,
        Detour::Abandoned,
        Detour::Meta,
        Detour::Rewound,
        Detour::ImplicitZero,
    ];
    for custom in [false, true] {
        let catalog = catalog(custom);
        for target in claimed_shapes(&catalog) {
            for kind in kinds {
                let commands = plan(&catalog, target, &[kind]);
                let reached = replay(catalog.clone(), &commands)
                    .unwrap_or_else(|e| panic!("{target:?} by {kind:?}: {e}"));
                assert_eq!(Shape::of(&reached), target, "by {kind:?}: {commands:?}");
            }
        }
    }
}

/// The oracle is not the rules restated to agree: it refuses what they refuse. A few
/// commands it must refuse, each for its own reason, and one it must accept.
#[test]
fn the_oracle_refuses_what_the_rules_refuse() {
    let b = at_state(default_catalog(), 10);
    let start = |c: i64, force: bool| Command::Start { state: code(c), actor: "t".into(), log: None, force };
    assert_eq!(expected(&b, &complete(7)), Err(Refusal::NotInCatalog));
    assert_eq!(expected(&b, &complete(5)), Err(Refusal::Behind));
    assert_eq!(expected(&b, &complete(15)), Err(Refusal::Ahead));
    assert_eq!(expected(&b, &retry(false)), Err(Refusal::NotFailed));
    let open = ok(&b, start(10, false), 50);
    assert_eq!(expected(&open, &start(10, false)), Err(Refusal::AttemptOpen));
    assert_eq!(expected(&open, &start(10, true)).map(|s| (s.state, s.open)), Ok((code(10), true)));
    let failed = ok(&b, fail(10, FailureClass::Persistent, 3), 51);
    assert_eq!(expected(&failed, &complete(10)), Err(Refusal::MustRetry));
    assert_eq!(expected(&failed, &retry(false)), Err(Refusal::NeedsIntervention));
}

/// A cancel that cuts an attempt short closes it: what the regressions file's one seed
/// shrank to (`Start { Current }`, `Cancel`), when the strategy still generated whole
/// catalogs. Its seed makes other inputs under today's strategy, so the case itself is
/// kept here.
#[test]
fn a_cancel_closes_the_open_attempt() {
    let (b, created) = fresh(default_catalog());
    let start = Command::Start { state: code(0), actor: "t".into(), log: None, force: false };
    let started = apply(&b, &start, at(1)).expect("start 0");
    let cancel = Command::Cancel { actor: "t".into(), reason: "mirror was down".into() };
    let cancelled = apply(&started.build, &cancel, at(2)).expect("cancel");
    assert!(!cancelled.build.attempt_open());
    let history: Vec<HistoryEvent> =
        std::iter::once(created).chain(started.events).chain(cancelled.events).collect();
    let derived = attempts(&history);
    assert_eq!(derived.len(), 1, "{derived:?}");
    assert!(derived[0].ended_at.is_some(), "the cancelled attempt is left open: {derived:?}");
}

/// The regressions file is read: the properties' config, replaying nothing but its
/// persisted seeds (`cases: 0`), runs exactly one case per `cc` line of the file. With
/// persistence off, or pointed at another path, it runs none and this fails.
#[test]
fn the_regressions_file_is_replayed() {
    let file = include_str!("properties.proptest-regressions");
    let seeds = file.lines().filter(|l| l.starts_with("cc ")).count();
    assert!(seeds > 0, "the regressions file has no seeds");
    let mut config = config();
    config.cases = 0;
    // What `proptest!` sets for the tests in this file.
    config.source_file = Some(file!());
    let runs = std::cell::Cell::new(0usize);
    TestRunner::new(config)
        .run(&(any::<bool>(), ops()), |(custom, ops)| {
            runs.set(runs.get() + 1);
            run(catalog(custom), &ops).map(drop)
        })
        .expect("the persisted cases pass");
    assert_eq!(runs.get(), seeds, "persisted cases run");
}
