use std::time::Duration;

use buildstate_core::{
    BuildId, BuildStatus, Command, FailureClass, FailureType, LeaseRequest, LeaseToken, Rejection,
};

use crate::conformance::Harness;
use crate::{Guard, StoreError};

use super::support::*;

pub async fn rejects_codes_outside_the_catalog_and_out_of_order(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 10).await;
    for cmd in [start(7), complete(7), fail(7, FailureClass::Transient, 3), skip(7, "x"), rewind(7, "x")] {
        assert_rejected!(st, b.id, cmd, Rejection::NotInCatalog { .. });
    }
    for cmd in [start(5), complete(5), fail(5, FailureClass::Transient, 3), skip(0, "x")] {
        assert_rejected!(st, b.id, cmd, Rejection::Behind { .. });
    }
    for cmd in [start(15), complete(100), fail(50, FailureClass::Transient, 3), skip(15, "x")] {
        assert_rejected!(st, b.id, cmd, Rejection::Ahead { .. });
    }
}

pub async fn rejects_by_attempt_and_retry_rules(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let new = seed(st).await;
    let pending = create(st, &new).await;
    assert_rejected!(st, pending.id, retry(false, None), Rejection::NotFailed { .. });

    let b = create(st, &new).await;
    advance_to(st, b.id, 10).await;
    assert_rejected!(st, b.id, retry(true, None), Rejection::NotFailed { .. });
    run(st, b.id, start(10)).await;
    assert_rejected!(st, b.id, start(10), Rejection::AttemptOpen { .. });
    assert_rejected!(st, b.id, skip(10, "x"), Rejection::AttemptOpen { .. });
    assert_rejected!(st, b.id, retry(false, None), Rejection::NotFailed { .. });

    // `start --force` abandons the open attempt, recorded as an interrupted failure.
    let forced = run(st, b.id, start_forced(10)).await;
    assert_eq!(forced.build.attempt, 2);
    assert_eq!(forced.failures.len(), 1);
    assert_eq!(forced.failures[0].info.failure_type, FailureType::interrupted());
    assert!(forced.events.iter().all(|e| e.forced), "both events of the override are marked forced");

    run(st, b.id, fail(10, FailureClass::Transient, 5)).await;
    for cmd in [start(10), complete(10), fail(10, FailureClass::Transient, 5), skip(10, "x")] {
        assert_rejected!(st, b.id, cmd, Rejection::MustRetry { .. });
    }
    assert_eq!(run(st, b.id, retry(false, None)).await.build.status, BuildStatus::Running);
    assert_eq!(run(st, b.id, start(10)).await.build.attempt, 3, "attempts keep counting after a retry");
}

pub async fn rejects_everything_but_rewind_on_terminal_builds(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let new = seed(st).await;
    let b = create(st, &new).await;
    advance_to(st, b.id, 100).await;
    assert_rejected!(st, b.id, skip(100, "publish later"), Rejection::SkipDelivery { .. });
    run(st, b.id, complete(100)).await;
    let delivered_cmds = [
        start(100),
        complete(100),
        fail(100, FailureClass::Transient, 3),
        skip(100, "x"),
        retry(true, None),
        cancel("x"),
    ];
    for cmd in delivered_cmds {
        assert_rejected!(st, b.id, cmd, Rejection::Terminal { status: BuildStatus::Completed, .. });
    }
    // A completed build never falls back to running by anything but a rewind.
    assert_eq!(reload(st, b.id).await.status, BuildStatus::Completed);

    let c = create(st, &new).await;
    run(st, c.id, cancel("not needed")).await;
    for cmd in [
        start(0),
        complete(0),
        fail(0, FailureClass::Transient, 3),
        skip(0, "x"),
        retry(true, None),
        cancel("x"),
    ] {
        assert_rejected!(st, c.id, cmd, Rejection::Terminal { status: BuildStatus::Cancelled, .. });
    }
    let reopened = run(st, b.id, rewind(90, "re-validate after CVE")).await.build;
    assert_eq!((reopened.state, reopened.status), (code(90), BuildStatus::Running));
}

pub async fn rejects_rewind_forward_and_missing_reasons(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 10).await;
    assert_rejected!(st, b.id, rewind(50, "jump"), Rejection::RewindForward { .. });
    for reason in ["", "   ", " \t\n "] {
        assert_rejected!(st, b.id, rewind(5, reason), Rejection::ReasonRequired { .. });
        assert_rejected!(st, b.id, cancel(reason), Rejection::ReasonRequired { .. });
    }
}

pub async fn version_mismatch_is_a_conflict(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    run(st, b.id, complete(0)).await;
    let before = export(st, b.id).await;
    for stale in [1, 3, 0] {
        match st.apply(b.id, &complete(5), Guard::version(stale)).await {
            Err(StoreError::Conflict { expected, found, .. }) => {
                assert_eq!((expected, found), (stale, 2), "Conflict names both versions");
            }
            other => panic!("expected_version {stale} on a build at version 2 → Conflict, got {other:?}"),
        }
        assert_eq!(export(st, b.id).await, before, "a conflicting apply changed the store");
    }
    let ok = st.apply(b.id, &complete(5), Guard::version(2)).await.expect("the current version is accepted");
    assert_eq!(ok.build.version, 3);
}

pub async fn unknown_build_is_not_found(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let ghost = BuildId::generate(1_770_000_000_000, 0x5eed);
    macro_rules! not_found {
        ($what:literal, $call:expr) => {
            let r = $call.await;
            assert!(
                matches!(r, Err(StoreError::BuildNotFound(_))),
                "{} of an unknown build, got {r:?}",
                $what
            );
        };
    }
    not_found!("build", st.build(ghost));
    not_found!("apply", st.apply(ghost, &complete(0), Guard::none()));
    not_found!("history", st.history(ghost));
    not_found!("export", st.export_build(ghost));
    not_found!("artifacts", st.artifacts(ghost));
    not_found!("add artifact", st.add_artifact(ghost, &artifact("x", "y"), Guard::none()));
    not_found!("resolve", st.resolve_failures(ghost, None, "x", Guard::none()));
    let req = LeaseRequest { owner: "o".into(), host: "h".into(), pid: 1, ttl: Duration::from_secs(30) };
    not_found!("acquire lease", st.acquire_lease(ghost, &req));
    not_found!("renew lease", st.renew_lease(ghost, LeaseToken::first(1), Duration::from_secs(30)));
    not_found!("release lease", st.release_lease(ghost, LeaseToken::first(1)));
    not_found!("break lease", st.break_lease(ghost));
    assert_eq!(reload(st, b.id).await, b, "the existing build is untouched");
}

// ── history ──────────────────────────────────────────────────────────────────────
