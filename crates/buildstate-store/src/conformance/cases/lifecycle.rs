use std::collections::BTreeMap;

use buildstate_core::{
    AttemptStatus, BuildId, BuildStatus, Command, EventKind, FailureClass, Milestone, NewBuild, Rejection,
    StateCatalog, StateCode, attempts,
};

use crate::conformance::Harness;
use crate::{BuildFilter, FailureFilter, Guard, StoreError};

use super::support::*;

pub async fn lifecycle_start_complete_to_delivered(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let codes: Vec<StateCode> = b.catalog.codes().collect();
    let mut version = b.version;
    let mut last = None;
    for c in &codes {
        let c = i64::from(c.get());
        let started = st
            .apply(b.id, &start(c), Guard::version(version))
            .await
            .unwrap_or_else(|e| panic!("start {c}: {e}"));
        version += 1;
        assert_eq!((started.build.version, started.build.status), (version, BuildStatus::Running));
        assert!(started.build.attempt_open() && started.build.attempt == 1, "start opens attempt 1 at {c}");
        let done = st
            .apply(b.id, &complete(c), Guard::version(version))
            .await
            .unwrap_or_else(|e| panic!("complete {c}: {e}"));
        version += 1;
        assert_eq!(done.build.version, version);
        assert!(!done.build.attempt_open());
        last = Some(done);
    }
    let delivered = reload(st, b.id).await;
    assert_eq!(
        Some(&delivered),
        last.as_ref().map(|o| &o.build),
        "the store holds what the last apply returned"
    );
    assert_eq!((delivered.state, delivered.status), (StateCode::DELIVERED, BuildStatus::Completed));
    assert!(delivered.ended_at.is_some() && delivered.started_at.is_some());
    assert_eq!(delivered.history_len, 2 * 21 + 1);

    let events = history(st, b.id).await;
    assert_eq!(events.len(), 2 * 21 + 1, "created + (started, completed) × 21 milestones");
    for (i, c) in codes.iter().enumerate() {
        let (s_ev, c_ev) = (&events[1 + 2 * i], &events[2 + 2 * i]);
        assert_eq!((s_ev.kind, s_ev.state, s_ev.attempt), (EventKind::Started, *c, 1));
        assert_eq!((c_ev.kind, c_ev.state, c_ev.attempt), (EventKind::Completed, *c, 1));
        assert_eq!(c_ev.exit_code, Some(0));
        assert_eq!(s_ev.log.as_deref(), Some(format!("logs/{c}.log").as_str()), "the log pointer is kept");
    }
    let derived = attempts(&events);
    assert_eq!(derived.len(), 21);
    assert!(derived.iter().all(|a| a.status == AttemptStatus::Completed && a.number == 1));
}

pub async fn fail_keeps_state_and_retry_reopens(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 25).await;
    run(st, b.id, start(25)).await;
    let failed = run(st, b.id, fail(25, FailureClass::Transient, 3)).await;
    let fb = &failed.build;
    assert_eq!(
        (fb.state, fb.status, fb.attempt),
        (code(25), BuildStatus::Failed, 1),
        "failure keeps state 25"
    );
    assert!(!fb.needs_intervention && !fb.attempt_open());
    assert_eq!(fb.failure_count, 1);
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!(
        (last.kind, last.state, last.attempt, last.exit_code),
        (EventKind::Failed, code(25), 1, Some(2))
    );
    assert_eq!(last.message.as_deref(), Some("task `enable selinux` failed"));

    let retried = run(st, b.id, retry(false, Some("mirror is back"))).await;
    assert_eq!(
        (retried.build.state, retried.build.status),
        (code(25), BuildStatus::Running),
        "retry resumes at 25"
    );
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!((last.kind, last.message.as_deref()), (EventKind::Retried, Some("mirror is back")));
    let again = run(st, b.id, start(25)).await;
    assert_eq!(again.build.attempt, 2, "the retry is attempt 2");
    let done = run(st, b.id, complete(25)).await;
    assert_eq!((done.build.state, done.build.status), (code(30), BuildStatus::Running));

    // Failing without a start records a zero-length attempt (track-only use).
    let implicit = run(st, b.id, fail(30, FailureClass::Transient, 3)).await;
    assert_eq!((implicit.build.state, implicit.build.attempt), (code(30), 1));
}

pub async fn retries_exhausted_need_a_person_and_force_is_recorded(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let first = run(st, b.id, fail(0, FailureClass::Transient, 2)).await;
    assert!(!first.build.needs_intervention, "attempt 1 of 2 may be retried");
    run(st, b.id, retry(false, None)).await;
    let second = run(st, b.id, fail(0, FailureClass::Transient, 2)).await;
    assert!(second.build.needs_intervention, "attempt 2 of 2 used up the retries");
    assert_eq!(second.build.status, BuildStatus::Failed);
    let flagged = BuildFilter { needs_intervention: Some(true), ..BuildFilter::default() };
    assert_eq!(build_filter(st, flagged).await, vec![b.id]);

    assert_rejected!(st, b.id, retry(false, Some("just once more")), Rejection::NeedsIntervention { .. });
    let forced = run(st, b.id, retry(true, Some("mirror fixed by ops"))).await;
    assert_eq!((forced.build.status, forced.build.needs_intervention), (BuildStatus::Running, false));
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!(last.kind, EventKind::Retried);
    assert!(last.forced, "a forced retry is recorded as an override");
    assert_eq!(last.message.as_deref(), Some("mirror fixed by ops"));
    assert_eq!(run(st, b.id, start(0)).await.build.attempt, 3);
    assert_eq!(run(st, b.id, complete(0)).await.build.state, code(5));
}

pub async fn persistent_failure_needs_a_person_at_once(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 70).await;
    let info = failure("test", FailureClass::Persistent, "smoke test: port 443 closed");
    let failed = run(st, b.id, fail_with(70, info, 5)).await;
    assert!(failed.build.needs_intervention, "a persistent failure needs a person after one attempt");
    assert_eq!(failed.build.attempt, 1);
    assert_rejected!(st, b.id, retry(false, None), Rejection::NeedsIntervention { .. });
    let records = st
        .failures(&FailureFilter { build: Some(b.id), ..FailureFilter::default() })
        .await
        .expect("failures");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].info.class, FailureClass::Persistent);
}

pub async fn rewind_invalidates_milestones_above(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 25).await;
    run(st, b.id, start(25)).await;
    let back = run(st, b.id, rewind(10, "base image changed")).await;
    let bb = &back.build;
    assert_eq!((bb.state, bb.status, bb.attempt), (code(10), BuildStatus::Running, 0));
    assert!(!bb.attempt_open(), "a rewind ends the open attempt");
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!((last.kind, last.state, last.from_state), (EventKind::Rewound, code(10), Some(code(25))));
    assert_eq!(last.message.as_deref(), Some("base image changed"));
    // Milestones above 10 are invalid again: they must be run again, in order.
    assert_rejected!(st, b.id, complete(15), Rejection::Ahead { .. });
    assert_rejected!(st, b.id, start(25), Rejection::Ahead { .. });
    assert_eq!(run(st, b.id, complete(10)).await.build.state, code(15));
}

pub async fn cancel_is_terminal_until_rewound(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 15).await;
    let cancelled = run(st, b.id, cancel("superseded by build 002")).await;
    assert_eq!((cancelled.build.state, cancelled.build.status), (code(15), BuildStatus::Cancelled));
    assert!(cancelled.build.ended_at.is_some());
    for cmd in [
        start(15),
        complete(15),
        fail(15, FailureClass::Transient, 3),
        skip(15, "x"),
        retry(true, None),
        cancel("again"),
    ] {
        assert_rejected!(st, b.id, cmd, Rejection::Terminal { .. });
    }
    let meta = run(st, b.id, set_meta("note", Some("kept for audit"))).await;
    assert_eq!(meta.build.status, BuildStatus::Cancelled, "metadata may change; the status does not");
    let reopened = run(st, b.id, rewind(15, "cancelled by mistake")).await;
    assert_eq!((reopened.build.state, reopened.build.status), (code(15), BuildStatus::Running));
    assert_eq!(reopened.build.ended_at, None);
    run(st, b.id, start(15)).await;
}

pub async fn skip_advances_and_is_recorded(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let skipped = run(st, b.id, skip(0, "triggered by hand")).await;
    assert_eq!((skipped.build.state, skipped.build.status), (code(5), BuildStatus::Running));
    let last = history(st, b.id).await.pop().expect("history is not empty");
    assert_eq!(
        (last.kind, last.state, last.message.as_deref()),
        (EventKind::Skipped, code(0), Some("triggered by hand"))
    );
    let derived = attempts(&history(st, b.id).await);
    assert_eq!(derived.len(), 1);
    assert_eq!((derived[0].state, derived[0].status), (code(0), AttemptStatus::Skipped));
    run(st, b.id, start(5)).await;
    assert_rejected!(st, b.id, skip(5, "no"), Rejection::AttemptOpen { .. });
}

pub async fn set_meta_sets_and_removes(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    run(st, b.id, set_meta("ami/us-east-1", Some("ami-0abc1234"))).await;
    run(st, b.id, set_meta("owner", Some("team-images"))).await;
    run(st, b.id, set_meta("owner", Some("team-platform"))).await;
    let after = run(st, b.id, set_meta("ami/us-east-1", None)).await.build;
    assert_eq!(after.metadata, BTreeMap::from([(key("owner"), value("owner", "team-platform"))]));
    assert_eq!(after.version, b.version + 4, "each metadata change bumps the version");
    assert_eq!(history(st, b.id).await.len(), 1, "metadata is not history");
    assert_eq!(export(st, b.id).await.metadata, after.metadata);
    run(st, b.id, fail(0, FailureClass::Persistent, 1)).await;
    let on_failed = run(st, b.id, set_meta("ticket", Some("OPS-7"))).await.build;
    assert_eq!(on_failed.status, BuildStatus::Failed, "metadata can be set on a failed build");
    assert_eq!(on_failed.metadata.len(), 2);
}

pub async fn custom_catalog_with_inserted_codes(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let m = |c: i64, n: &str| Milestone {
        code: code(c),
        name: n.into(),
        meaning: format!("{n} step"),
        tool: "script".into(),
    };
    let catalog = StateCatalog::default_catalog()
        .with_inserted(vec![m(12, "hardening"), m(97, "sign")])
        .expect("12 and 97 fit");
    let new = NewBuild { catalog: catalog.clone(), ..seed(st).await };
    let b = create(st, &new).await;
    assert_eq!(reload(st, b.id).await.catalog, catalog, "the store keeps the build's own catalog");
    advance_to(st, b.id, 10).await;
    assert_eq!(run(st, b.id, complete(10)).await.build.state, code(12), "10 is followed by the inserted 12");
    assert_rejected!(st, b.id, complete(15), Rejection::Ahead { .. });
    assert_eq!(run(st, b.id, complete(12)).await.build.state, code(15));
    advance_to(st, b.id, 95).await;
    assert_eq!(run(st, b.id, complete(95)).await.build.state, code(97));
    assert_eq!(run(st, b.id, complete(97)).await.build.state, StateCode::DELIVERED, "97 is followed by 100");
    let done = run(st, b.id, complete(100)).await.build;
    assert_eq!((done.state, done.status), (StateCode::DELIVERED, BuildStatus::Completed));
    assert_eq!(export(st, b.id).await.catalog, catalog);
}

// ── rejections: typed, and nothing changes ───────────────────────────────────────
