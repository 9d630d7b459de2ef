use std::collections::BTreeSet;

use buildstate_core::{
    Artifact, ArtifactKind, AttemptStatus, FailureClass, FailureType, MAX_NOTE_BYTES, attempts, clean_text,
};

use crate::conformance::Harness;
use crate::{FailureFilter, Guard, StoreError, now};

use super::support::*;

pub async fn history_is_append_only_and_gapless(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let steps = [
        start(0),
        fail(0, FailureClass::Transient, 3),
        retry(false, Some("flaky mirror")),
        start(0),
        complete(0),
        complete(5),
        start(10),
        start_forced(10),
        complete(10),
        set_meta("k", Some("v")),
        rewind(5, "bad kickstart"),
        skip(5, "already done by hand"),
        fail(10, FailureClass::Persistent, 3),
        cancel("giving up"),
    ];
    let mut seen = history(st, b.id).await;
    for cmd in steps {
        let name = cmd.name();
        let outcome = run(st, b.id, cmd).await;
        let now = history(st, b.id).await;
        assert!(now.starts_with(&seen), "after {name}, history no longer starts with the earlier history");
        assert_eq!(
            &now[seen.len()..],
            &outcome.events[..],
            "after {name}, the appended events are the outcome's"
        );
        assert_eq!(now.len() as u64, outcome.build.history_len);
        seen = now;
    }
    for (i, e) in seen.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "history seq runs 1..n without gaps");
    }
    assert!(seen.windows(2).all(|w| w[0].at <= w[1].at), "events are in time order");
    let derived: Vec<(u8, u32, AttemptStatus)> =
        attempts(&seen).iter().map(|a| (a.state.get(), a.number, a.status)).collect();
    use AttemptStatus::{Completed, Failed, Skipped};
    assert_eq!(
        derived,
        vec![
            (0, 1, Failed),
            (0, 2, Completed),
            (5, 1, Completed),
            (10, 1, Failed),
            (10, 2, Completed),
            (5, 0, Skipped),
            (10, 1, Failed)
        ],
        "attempts derived from the stored history are the attempts made"
    );
    assert_eq!(export(st, b.id).await.history, seen, "the document carries the same history");
}

// ── failures ─────────────────────────────────────────────────────────────────────

pub async fn failures_are_recorded_filtered_and_resolved(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let new = seed(st).await;
    let b = create(st, &new).await;
    let other = create(st, &new).await;
    run(st, b.id, start(0)).await;
    run(st, b.id, fail_with(0, failure("packer", FailureClass::Transient, "boot timeout"), 3)).await;
    tick().await;
    run(st, b.id, retry(false, None)).await;
    run(st, b.id, fail_with(0, failure("network", FailureClass::Transient, "mirror 503"), 3)).await;
    tick().await;
    run(st, b.id, retry(false, None)).await;
    run(st, b.id, complete(0)).await;
    run(st, b.id, fail_with(5, failure("packer", FailureClass::Persistent, "bad kickstart"), 3)).await;
    tick().await;
    run(st, other.id, fail(0, FailureClass::Transient, 3)).await;

    let of_b = FailureFilter { build: Some(b.id), ..FailureFilter::default() };
    let records = st.failures(&of_b).await.expect("failures of b");
    let summary: Vec<(u32, u8, u32, &str, FailureClass)> = records
        .iter()
        .map(|f| (f.number, f.state.get(), f.attempt, f.info.failure_type.as_str(), f.info.class))
        .collect();
    assert_eq!(
        summary,
        vec![
            (3, 5, 1, "packer", FailureClass::Persistent),
            (2, 0, 2, "network", FailureClass::Transient),
            (1, 0, 1, "packer", FailureClass::Transient),
        ],
        "one record per failed attempt, newest first"
    );
    let first = &records[2];
    assert_eq!(first.build_id, b.id);
    assert_eq!(first.info, failure("packer", FailureClass::Transient, "boot timeout"), "every field is kept");
    assert!(!first.resolved && first.resolution.is_none() && first.resolved_at.is_none());
    assert_eq!(st.failures(&FailureFilter::default()).await.expect("all failures").len(), 4, "across builds");

    let filtered = |f: FailureFilter| async move {
        let got = st.failures(&f).await.unwrap_or_else(|e| panic!("failures {f:?}: {e}"));
        got.iter().map(|r| (r.build_id, r.number)).collect::<Vec<_>>()
    };
    assert_eq!(
        filtered(FailureFilter { state: Some(code(0)), ..of_b.clone() }).await,
        vec![(b.id, 2), (b.id, 1)]
    );
    let packer = "packer".parse::<FailureType>().expect("valid type");
    assert_eq!(
        filtered(FailureFilter { failure_type: Some(packer), ..of_b.clone() }).await,
        vec![(b.id, 3), (b.id, 1)]
    );
    assert_eq!(filtered(FailureFilter { limit: Some(1), ..of_b.clone() }).await, vec![(b.id, 3)]);

    let version = reload(st, b.id).await.version;
    let notes = "mirror fixed; see OPS-42 — it's \"done\"";
    let resolved = st.resolve_failures(b.id, Some(2), notes, Guard::none()).await.expect("resolve one");
    assert_eq!(resolved.len(), 1);
    assert_eq!((resolved[0].number, resolved[0].resolved), (2, true));
    assert_eq!(resolved[0].resolution.as_deref(), Some(clean_text(notes, MAX_NOTE_BYTES).as_str()));
    assert!(resolved[0].resolved_at.is_some());
    let bumped = reload(st, b.id).await.version;
    assert!(bumped > version, "resolving a failure is a change: the version moves");
    assert!(
        st.resolve_failures(b.id, Some(2), "again", Guard::none()).await.expect("resolve twice").is_empty(),
        "already resolved"
    );
    let missing = st.resolve_failures(b.id, Some(99), "x", Guard::none()).await;
    assert!(matches!(missing, Err(StoreError::FailureNotFound { number: 99, .. })), "got {missing:?}");

    let unresolved = FailureFilter { unresolved_only: true, ..of_b.clone() };
    assert_eq!(filtered(unresolved.clone()).await, vec![(b.id, 3), (b.id, 1)]);
    let rest = st.resolve_failures(b.id, None, "all fixed", Guard::none()).await.expect("resolve all");
    assert_eq!(rest.iter().map(|f| f.number).collect::<BTreeSet<_>>(), BTreeSet::from([1, 3]));
    assert!(filtered(unresolved).await.is_empty());
    let other_unresolved =
        FailureFilter { build: Some(other.id), unresolved_only: true, ..FailureFilter::default() };
    assert_eq!(filtered(other_unresolved).await.len(), 1, "resolving b's failures leaves other builds alone");
    let kept = st.failures(&of_b).await.expect("failures of b");
    assert_eq!(
        kept.iter().find(|f| f.number == 2).and_then(|f| f.resolution.clone()),
        resolved[0].resolution
    );
    assert_eq!(export(st, b.id).await.errors.iter().filter(|f| f.resolved).count(), 3);
}

// ── artifacts ────────────────────────────────────────────────────────────────────

pub async fn artifacts_add_list_replace(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let ami = artifact("ami/us-east-1", "ami-0abc1234def567890");
    let disk = Artifact {
        name: "disk.qcow2".into(),
        kind: ArtifactKind::Disk,
        uri: "s3://images/rhel-8.8/base/disk.qcow2".into(),
        region: None,
        size_bytes: None,
        sha256: None,
        created_at: now(),
    };
    st.add_artifact(b.id, &ami, Guard::none()).await.expect("add image artifact");
    st.add_artifact(b.id, &disk, Guard::none()).await.expect("add disk artifact");
    let sorted = |mut v: Vec<Artifact>| {
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    assert_eq!(sorted(st.artifacts(b.id).await.expect("artifacts")), vec![ami.clone(), disk.clone()]);
    assert_eq!(reload(st, b.id).await.version, b.version + 2, "each artifact is a change: the version moves");

    let replaced = Artifact { uri: "ami-0fff".into(), size_bytes: Some(1), ..ami.clone() };
    st.add_artifact(b.id, &replaced, Guard::none()).await.expect("replace by name");
    let listed = sorted(st.artifacts(b.id).await.expect("artifacts"));
    assert_eq!(listed, vec![replaced, disk], "an artifact of the same name is replaced, not duplicated");
    assert_eq!(sorted(export(st, b.id).await.artifacts), listed, "the document carries the artifacts");
}

// ── documents ────────────────────────────────────────────────────────────────────
