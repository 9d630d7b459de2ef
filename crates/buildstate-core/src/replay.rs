//! Replaying a document's history through the rules.
//!
//! A build document (an import, an object-store copy, a JSON-file store's file) claims a
//! history and the build it led to. Both are accepted only if [`crate::apply`], run on
//! the commands the history records, produces exactly that history and that build: a
//! document that no valid sequence of transitions produces — an attempt left open for
//! ever, events at a state the build never reached, a second `created`, a version that
//! no history explains — is refused, the same way by every backend.

use std::collections::BTreeSet;

use crate::rules::IMPLICIT_COMPLETION;
use crate::{
    Build, BuildParts, Command, DocumentError, EventKind, FailureClass, FailureRecord, HistoryEvent,
    NewBuild, StateCode, apply,
};

/// Changes that bump a build's version without leaving a history event (metadata,
/// artifacts, resolved failures). A document may carry that many more versions than
/// its history explains; past it, the version is refused as invented (a version of
/// `i64::MAX` would let nothing ever change the build again).
pub const MAX_UNTRACKED_CHANGES: u64 = 1 << 20;

fn bad(m: String) -> DocumentError {
    DocumentError::Inconsistent(m)
}

/// Checks that `parts` is what the rules make of its own history.
pub fn check(parts: &BuildParts) -> Result<(), DocumentError> {
    let doc = &parts.build;
    let history = &parts.history;
    let Some(created) = history.first().filter(|e| e.kind == EventKind::Created) else {
        return Err(bad("the history does not begin with the build's `created` event".into()));
    };
    let new = NewBuild {
        platform: doc.platform.clone(),
        os: doc.os.clone(),
        image_type: doc.image_type.clone(),
        number: Some(doc.number.clone()),
        catalog: doc.catalog.clone(),
        created_by: doc.created_by.clone(),
        ci_url: doc.ci_url.clone(),
        metadata: doc.metadata.clone(),
    };
    let (mut build, first) = Build::create(doc.id, doc.number.clone(), new, created.at);
    same_event(&first, created)?;
    let mut failures: Vec<FailureRecord> = Vec::new();
    let mut i = 1;
    while i < history.len() {
        let (command, used) = command_at(history, i, parts)?;
        let event = &history[i];
        if event.at < history[i - 1].at {
            return Err(bad(format!("history entry {} is older than the entry before it", event.seq)));
        }
        let outcome = apply(&build, &command, event.at).map_err(|r| {
            bad(format!("history entry {} ({}) breaks the rules: {r}", event.seq, event.kind))
        })?;
        if outcome.events.len() != used {
            return Err(bad(format!(
                "history entry {} ({}) is not what the rules record",
                event.seq, event.kind
            )));
        }
        for (made, recorded) in outcome.events.iter().zip(&history[i..i + used]) {
            same_event(made, recorded)?;
        }
        failures.extend(outcome.failures);
        build = outcome.build;
        i += used;
    }
    check_failures(&failures, &parts.failures)?;
    let fields = |b: &Build| {
        (
            b.state,
            b.status,
            b.attempt,
            b.attempt_started_at,
            b.started_at,
            b.ended_at,
            b.history_len,
            b.failure_count,
        )
    };
    if fields(&build) != fields(doc) || build.needs_intervention != doc.needs_intervention {
        return Err(bad(format!(
            "the build (state {}, {}, attempt {}) is not where its history leads (state {}, {}, attempt {})",
            doc.state, doc.status, doc.attempt, build.state, build.status, build.attempt
        )));
    }
    let untracked = doc.version.checked_sub(build.version);
    if untracked.is_none_or(|n| n > MAX_UNTRACKED_CHANGES) {
        return Err(bad(format!(
            "version {} is not explained by its history ({} transitions make version {})",
            doc.version,
            history.len() - 1,
            build.version
        )));
    }
    if doc.updated_at < build.updated_at {
        return Err(bad("updated_at is older than the last history entry".into()));
    }
    let mut names = BTreeSet::new();
    if let Some(dup) = parts.artifacts.iter().find(|a| !names.insert(a.name.as_str())) {
        return Err(bad(format!("two artifacts are named `{}`; names are unique per build", dup.name)));
    }
    check_artifacts(parts)
}

/// What the rewinds of the history say about the artifacts: a current artifact's
/// milestone is one the build is at or past, and it was recorded after every rewind
/// that went back through its milestone (which would have invalidated it); an
/// invalidated one was invalidated by a rewind of the history — at that rewind's time,
/// back to its milestone or below, from its milestone or above — after it was
/// recorded. Artifacts are recorded by the store's clock, as the history is.
fn check_artifacts(parts: &BuildParts) -> Result<(), DocumentError> {
    let build = &parts.build;
    let rewinds: Vec<&HistoryEvent> = parts.history.iter().filter(|e| e.kind == EventKind::Rewound).collect();
    for a in &parts.artifacts {
        if let Some(m) = a.milestone
            && !build.catalog.contains(m)
        {
            return Err(bad(format!(
                "artifact `{}` names milestone {m}, which is not in the catalog",
                a.name
            )));
        }
        let through =
            |e: &&&HistoryEvent, m: StateCode| e.state <= m && e.from_state.is_some_and(|from| from >= m);
        match (a.milestone, a.invalidated_at) {
            (Some(m), None) if m > build.state => {
                return Err(bad(format!(
                    "artifact `{}` of milestone {m} is listed as current, but the build is back at {}: the rewind invalidated it",
                    a.name, build.state
                )));
            }
            (Some(m), None) => {
                if let Some(rewind) = rewinds.iter().filter(|e| through(e, m)).map(|e| e.at).max()
                    && a.created_at < rewind
                {
                    return Err(bad(format!(
                        "artifact `{}` of milestone {m} is listed as current, but it was recorded before the rewind at {rewind} that invalidated it",
                        a.name
                    )));
                }
            }
            (_, Some(at)) if at < a.created_at => {
                return Err(bad(format!(
                    "artifact `{}` is marked invalidated at {at}, before it was recorded ({})",
                    a.name, a.created_at
                )));
            }
            (_, Some(at)) => {
                let explains = |e: &HistoryEvent| {
                    e.at == at
                        && a.milestone
                            .is_none_or(|m| e.state <= m && e.from_state.is_some_and(|from| from >= m))
                };
                if !rewinds.iter().any(|e| explains(e)) {
                    return Err(bad(format!(
                        "artifact `{}` is marked invalidated at {at}, but no rewind of the history then went back through its milestone",
                        a.name
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The command that recorded `history[i]`, and how many entries it recorded.
fn command_at(
    history: &[HistoryEvent],
    i: usize,
    parts: &BuildParts,
) -> Result<(Command, usize), DocumentError> {
    let e = &history[i];
    let actor = e.actor.clone();
    let reason = || e.message.clone().unwrap_or_default();
    Ok(match e.kind {
        EventKind::Created => {
            return Err(bad(format!("history entry {} is a second `created` event", e.seq)));
        }
        EventKind::Started => (Command::Start { state: e.state, actor, log: e.log.clone(), force: false }, 1),
        // A forced start abandons the open attempt: one command, two entries.
        EventKind::Failed if e.forced => match history.get(i + 1) {
            Some(next) if next.kind == EventKind::Started && next.forced => (
                Command::Start {
                    state: next.state,
                    actor: next.actor.clone(),
                    log: next.log.clone(),
                    force: true,
                },
                2,
            ),
            _ => {
                return Err(bad(format!(
                    "history entry {} abandons an attempt that nothing replaced",
                    e.seq
                )));
            }
        },
        EventKind::Failed => {
            let number = history[..i].iter().filter(|h| h.kind == EventKind::Failed).count() + 1;
            let Some(record) = parts.failures.get(number - 1) else {
                return Err(bad(format!("history entry {} has no failure record {number}", e.seq)));
            };
            // The retry policy is not recorded; what followed tells whether the build
            // needed a person: a forced retry, or the document's own flag at the end.
            let needs_person = match history[i + 1..].iter().find(|h| h.kind != EventKind::Created) {
                Some(next) if next.kind == EventKind::Retried => next.forced,
                Some(_) => false,
                None => parts.build.needs_intervention,
            };
            let max_attempts =
                if needs_person || record.info.class == FailureClass::Persistent { 1 } else { u32::MAX };
            let failure =
                crate::FailureInfo { message: e.message.clone().unwrap_or_default(), ..record.info.clone() };
            (Command::Fail { state: e.state, actor, failure, max_attempts, log: e.log.clone() }, 1)
        }
        // Acting on the first milestone after 0 of a new build completes 0 implicitly:
        // one command (the one acting on that milestone), its entries after this one.
        EventKind::Completed if is_implicit_completion(e) => match history.get(i + 1) {
            // Not another implicit completion: that bounds the recursion (a document of a
            // million of them must be refused, not overflow the stack).
            Some(next)
                if next.at == e.at && next.kind != EventKind::Created && !is_implicit_completion(next) =>
            {
                let (command, used) = command_at(history, i + 1, parts)?;
                (command, used + 1)
            }
            _ => {
                return Err(bad(format!(
                    "history entry {} completes 0 implicitly for a command it does not record",
                    e.seq
                )));
            }
        },
        EventKind::Completed => {
            (Command::Complete { state: e.state, actor, exit_code: e.exit_code, log: e.log.clone() }, 1)
        }
        EventKind::Skipped => (Command::Skip { state: e.state, actor, reason: reason() }, 1),
        EventKind::Retried => (Command::Retry { actor, reason: e.message.clone(), force: e.forced }, 1),
        EventKind::Rewound => (Command::Rewind { to: e.state, actor, reason: reason() }, 1),
        EventKind::Cancelled => (Command::Cancel { actor, reason: reason() }, 1),
    })
}

fn is_implicit_completion(e: &HistoryEvent) -> bool {
    e.state == StateCode::INITIAL && e.message.as_deref().is_some_and(|m| m.starts_with(IMPLICIT_COMPLETION))
}

/// What the rules decide about an event: its place, kind, milestone and attempt.
fn same_event(made: &HistoryEvent, recorded: &HistoryEvent) -> Result<(), DocumentError> {
    let key = |e: &HistoryEvent| (e.seq, e.kind, e.state, e.attempt, e.from_state, e.forced, e.started_at);
    if key(made) == key(recorded) {
        Ok(())
    } else {
        Err(bad(format!(
            "history entry {} ({} at {}, attempt {}) is not what the rules record there ({} at {}, attempt {})",
            recorded.seq,
            recorded.kind,
            recorded.state,
            recorded.attempt,
            made.kind,
            made.state,
            made.attempt
        )))
    }
}

fn check_failures(made: &[FailureRecord], recorded: &[FailureRecord]) -> Result<(), DocumentError> {
    if made.len() != recorded.len() {
        return Err(bad(format!(
            "the history records {} failures but the document lists {}",
            made.len(),
            recorded.len()
        )));
    }
    for (m, r) in made.iter().zip(recorded) {
        let key = |f: &FailureRecord| (f.number, f.state, f.attempt, f.at);
        if key(m) != key(r) {
            return Err(bad(format!("error {} does not match the failure its history records", r.number)));
        }
        if r.resolved != r.resolved_at.is_some() || r.resolved_at.is_some_and(|t| t < r.at) {
            return Err(bad(format!("error {} has a resolution that does not fit it", r.number)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use proptest::prelude::*;

    use super::*;
    use crate::{
        Artifact, ArtifactKind, BuildDocument, BuildId, BuildNumber, FailureInfo, FailureType, MetaKey,
        MetaValue, Name, StateCatalog, StateCode,
    };

    fn name(s: &str) -> Name {
        Name::new(s).expect("name")
    }

    fn new_build() -> (Build, HistoryEvent) {
        let new = NewBuild {
            platform: name("aws"),
            os: name("rhel-9.6"),
            image_type: name("base"),
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: "test".into(),
            ci_url: None,
            metadata: BTreeMap::new(),
        };
        let at = Timestamp::from_second(1_770_000_000).expect("time");
        let number = BuildNumber::new("rhel-9.6-base-aws-20260202-001").expect("number");
        Build::create(BuildId::generate(1_770_000_000_000, 42), number, new, at)
    }

    /// A command chosen by `pick` for the build as it stands (most of them valid).
    fn command(b: &Build, pick: u8, extra: u8) -> Command {
        let actor = "prop".to_owned();
        let failure = |persistent: bool| FailureInfo {
            failure_type: "ansible".parse::<FailureType>().expect("type"),
            class: if persistent { FailureClass::Persistent } else { FailureClass::Transient },
            component: None,
            message: "boom".into(),
            details: BTreeMap::new(),
            exit_code: Some(2),
        };
        // 9: a runner ahead of the build — refused, except on a new build, whose first
        // milestone completes 0 implicitly.
        let next = b.catalog.next(b.state).unwrap_or(b.state);
        match pick % 10 {
            9 => match extra % 4 {
                0 => Command::Start { state: next, actor, log: None, force: false },
                1 => Command::Complete { state: next, actor, exit_code: None, log: None },
                2 => {
                    Command::Fail { state: next, actor, failure: failure(false), max_attempts: 3, log: None }
                }
                _ => Command::Skip { state: next, actor, reason: "untracked".into() },
            },
            0 => Command::Start { state: b.state, actor, log: None, force: extra.is_multiple_of(2) },
            1 | 2 => Command::Complete { state: b.state, actor, exit_code: Some(0), log: None },
            3 => Command::Fail {
                state: b.state,
                actor,
                failure: failure(extra.is_multiple_of(5)),
                max_attempts: u32::from(extra % 4),
                log: None,
            },
            4 => Command::Retry { actor, reason: Some("again".into()), force: extra.is_multiple_of(3) },
            5 => Command::Skip { state: b.state, actor, reason: "not here".into() },
            6 => {
                let codes: Vec<StateCode> = b.catalog.codes().filter(|c| *c <= b.state).collect();
                Command::Rewind { to: codes[usize::from(extra) % codes.len()], actor, reason: "redo".into() }
            }
            7 => Command::Cancel { actor, reason: "stop".into() },
            _ => {
                let key = MetaKey::new("k").expect("key");
                Command::SetMeta { value: MetaValue::new(&key, "v").ok(), key }
            }
        }
    }

    /// The parts of the build that `steps` lead to, as a store would hold them.
    fn run(steps: &[(u8, u8)]) -> BuildParts {
        let (mut build, created) = new_build();
        let mut history = vec![created];
        let mut failures = Vec::new();
        let mut at = build.created_at;
        for &(pick, extra) in steps {
            at = at.checked_add(jiff::SignedDuration::from_secs(i64::from(extra % 7))).expect("time");
            if let Ok(o) = apply(&build, &command(&build, pick, extra), at) {
                build = o.build;
                history.extend(o.events);
                failures.extend(o.failures);
            }
        }
        BuildParts { build, provider: Some("aws".into()), history, failures, artifacts: Vec::new() }
    }

    proptest! {
        /// Whatever the rules produce, replay accepts, also through a document.
        #[test]
        fn every_reachable_build_replays(steps in proptest::collection::vec((any::<u8>(), any::<u8>()), 0..80)) {
            let parts = run(&steps);
            prop_assert_eq!(check(&parts), Ok(()));
            let doc = BuildDocument::from_parts(parts.clone());
            let text = serde_json::to_string(&doc).expect("encode");
            prop_assert_eq!(BuildDocument::parse(&text), Ok(parts));
        }
    }

    /// A build that has failed, been retried, and is running again at 10.
    fn worked() -> BuildParts {
        run(&[(1, 0), (1, 0), (3, 2), (4, 2), (0, 1)])
    }

    fn refused(parts: &BuildParts, what: &str) {
        assert!(matches!(check(parts), Err(DocumentError::Inconsistent(_))), "{what} must be refused");
    }

    /// The parts after `commands`, each applied one second after the last.
    fn after(commands: &[Command]) -> BuildParts {
        let (mut build, created) = new_build();
        let mut history = vec![created];
        let mut failures = Vec::new();
        for (i, cmd) in commands.iter().enumerate() {
            let at =
                build.created_at.checked_add(jiff::SignedDuration::from_secs(i as i64 + 1)).expect("time");
            let o = apply(&build, cmd, at).expect("an accepted command");
            build = o.build;
            history.extend(o.events);
            failures.extend(o.failures);
        }
        BuildParts { build, provider: Some("aws".into()), history, failures, artifacts: Vec::new() }
    }

    #[test]
    fn an_implicit_completion_of_0_replays_as_part_of_its_command() {
        let five = StateCode::new(5).expect("code");
        let failure = FailureInfo {
            failure_type: "packer".parse::<FailureType>().expect("type"),
            class: FailureClass::Transient,
            component: None,
            message: "kickstart timed out".into(),
            details: BTreeMap::new(),
            exit_code: Some(1),
        };
        let actor = || "ci".to_owned();
        let firsts = [
            Command::Start { state: five, actor: actor(), log: Some("logs/5-1".into()), force: false },
            Command::Complete { state: five, actor: actor(), exit_code: Some(0), log: None },
            Command::Fail {
                state: five,
                actor: actor(),
                failure: failure.clone(),
                max_attempts: 3,
                log: None,
            },
            Command::Fail { state: five, actor: actor(), failure, max_attempts: 1, log: None },
            Command::Skip { state: five, actor: actor(), reason: "not tracked by this pipeline".into() },
        ];
        for first in firsts {
            let parts = after(std::slice::from_ref(&first));
            assert_eq!(parts.history[1].kind, EventKind::Completed);
            assert!(is_implicit_completion(&parts.history[1]), "{:?}", parts.history[1]);
            assert_eq!(check(&parts), Ok(()), "after {first:?}");
            let doc = BuildDocument::from_parts(parts.clone());
            let text = serde_json::to_string(&doc).expect("encode");
            assert_eq!(BuildDocument::parse(&text), Ok(parts), "a document after {first:?}");
        }
        // And what follows it replays too.
        let complete = Command::Complete { state: five, actor: actor(), exit_code: Some(0), log: None };
        let ten = StateCode::new(10).expect("code");
        let parts = after(&[
            Command::Start { state: five, actor: actor(), log: None, force: false },
            complete,
            Command::Start { state: ten, actor: actor(), log: None, force: false },
        ]);
        assert_eq!(parts.history.len(), 5, "created, 0 implicitly, started and completed 5, started 10");
        assert_eq!(check(&parts), Ok(()));

        let good = parts;
        // The implicit completion without the command it belongs to.
        let mut p = good.clone();
        p.history.remove(2);
        refused(&p, "an implicit completion whose command is missing");
        let mut p = good.clone();
        p.history.truncate(2);
        p.build = after(&[]).build;
        refused(&p, "an implicit completion at the end of the history");
        // Recorded at another time than its command: not one transaction.
        let mut p = good.clone();
        p.history[2].at = p.history[2].at.checked_add(jiff::SignedDuration::from_secs(1)).expect("time");
        refused(&p, "an implicit completion apart from its command");
        // Claimed on a build that was already started (0 tracked by hand).
        let mut p = after(&[
            Command::Start { state: StateCode::INITIAL, actor: actor(), log: None, force: false },
            Command::Complete { state: StateCode::INITIAL, actor: actor(), exit_code: None, log: None },
        ]);
        p.history[2].message = Some("completed implicitly: the first tracked milestone was 5".into());
        refused(&p, "an implicit completion of a started build");
        // A long chain of them is refused, not followed recursively.
        let mut p = good;
        let fake = p.history[1].clone();
        let tail = p.history.split_off(1);
        p.history.extend(std::iter::repeat_n(fake, 200_000));
        p.history.extend(tail);
        for (i, e) in p.history.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        refused(&p, "a chain of implicit completions");
    }

    #[test]
    fn documents_no_history_explains_are_refused() {
        let good = worked();
        assert_eq!(check(&good), Ok(()));
        assert!(good.build.attempt_open(), "the fixture ends with an open attempt");

        let mut p = good.clone();
        p.history[3].kind = EventKind::Created;
        refused(&p, "a second created event");

        let mut p = good.clone();
        p.history[2].state = StateCode::new(45).expect("code");
        refused(&p, "an event at a state the build never reached");

        let mut p = good.clone();
        p.build.status = crate::BuildStatus::Failed;
        p.build.attempt_started_at = None;
        refused(&p, "a status its history does not lead to");

        let mut p = good.clone();
        p.build.attempt_started_at = None;
        refused(&p, "an attempt the history leaves open, closed by hand");

        let mut p = good.clone();
        p.build.version = i64::MAX as u64;
        refused(&p, "a version no history explains");
        let mut p = good.clone();
        p.build.version -= 1;
        refused(&p, "a version below what the history makes");

        let mut p = good.clone();
        let artifact = Artifact {
            name: "ami".into(),
            kind: ArtifactKind::Image,
            uri: "ami-1".into(),
            region: None,
            cloud: None,
            size_bytes: None,
            sha256: None,
            created_at: p.build.created_at,
            milestone: None,
            invalidated_at: None,
        };
        p.artifacts = vec![artifact.clone(), artifact];
        refused(&p, "two artifacts of one name");

        let mut p = good.clone();
        p.failures.clear();
        refused(&p, "a failure in the history without its record");

        let mut p = good;
        p.history.truncate(1);
        refused(&p, "a history cut short");
    }

    fn later_than(t: Timestamp) -> Timestamp {
        t.checked_add(jiff::SignedDuration::from_secs(1)).expect("time")
    }

    #[test]
    fn artifacts_agree_with_the_rewinds_of_the_history() {
        let code = |n| StateCode::new(n).expect("code");
        let complete =
            |n| Command::Complete { state: code(n), actor: "ci".into(), exit_code: None, log: None };
        let rewind = Command::Rewind { to: code(10), actor: "ci".into(), reason: "redo".into() };
        let good = after(&[complete(0), complete(5), complete(10), complete(15), rewind]);
        assert_eq!(good.build.state, code(10));
        let rewound_at = good.history.last().expect("the rewind").at;
        let artifact = |name: &str, milestone: Option<i64>, invalidated_at: Option<Timestamp>| Artifact {
            name: name.into(),
            kind: ArtifactKind::Disk,
            uri: format!("s3://b/{name}"),
            region: None,
            cloud: None,
            size_bytes: None,
            sha256: None,
            created_at: good.build.created_at,
            milestone: milestone.map(code),
            invalidated_at,
        };
        let mut p = good.clone();
        let recorded_after = |a: Artifact| Artifact { created_at: rewound_at, ..a };
        p.artifacts = vec![
            artifact("before", Some(5), None),
            recorded_after(artifact("at-the-target", Some(10), None)),
            artifact("rerun", Some(15), Some(rewound_at)),
            artifact("target-rerun", Some(10), Some(rewound_at)),
            artifact("unknown", None, None),
            artifact("unknown-invalidated", None, Some(rewound_at)),
        ];
        assert_eq!(check(&p), Ok(()), "current below or at the build's state, invalidated by the rewind");

        let one = |a: Artifact| BuildParts { artifacts: vec![a], ..good.clone() };
        refused(
            &one(artifact("ahead", Some(15), None)),
            "a current artifact of a milestone the build is back before",
        );
        refused(
            &one(artifact("rerun-before", Some(10), None)),
            "a current artifact of the rewind's target recorded before the rewind",
        );
        refused(
            &one(Artifact {
                created_at: later_than(rewound_at),
                ..artifact("early", Some(15), Some(rewound_at))
            }),
            "an invalidation before the artifact was recorded",
        );
        refused(&one(artifact("seven", Some(7), None)), "an artifact of a milestone outside the catalog");
        let later = rewound_at.checked_add(jiff::SignedDuration::from_secs(1)).expect("time");
        refused(
            &one(artifact("when", Some(15), Some(later))),
            "an invalidation at a time no rewind happened",
        );
        refused(
            &one(artifact("below", Some(5), Some(rewound_at))),
            "an invalidation by a rewind that did not go back through its milestone",
        );
        refused(
            &one(artifact("never", Some(5), Some(good.build.created_at))),
            "an invalidation without a rewind",
        );
    }
}
