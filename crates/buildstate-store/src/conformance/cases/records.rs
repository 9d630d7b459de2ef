use std::collections::BTreeSet;

use buildstate_core::{
    Artifact, ArtifactKind, AttemptStatus, BuildDocument, BuildId, Command, FailureClass, FailureType,
    MAX_NOTE_BYTES, Rejection, attempts, clean_text,
};

use crate::conformance::Harness;
use crate::{FailureFilter, Guard, ImportMode, StoreError, now};

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
    assert_eq!(ami.cloud.as_deref(), Some("aws"), "the image is in a cloud, so the round trip carries one");
    let disk = Artifact {
        name: "disk.qcow2".into(),
        kind: ArtifactKind::Disk,
        uri: "s3://images/rhel-8.8/base/disk.qcow2".into(),
        region: None,
        cloud: None,
        size_bytes: None,
        sha256: None,
        created_at: now(),
        // What the caller claims is not what the store records: the build's state is.
        milestone: Some(code(45)),
        invalidated_at: Some(now()),
    };
    let before = now();
    st.add_artifact(b.id, &ami, Guard::none()).await.expect("add image artifact");
    st.add_artifact(b.id, &disk, Guard::none()).await.expect("add disk artifact");
    let after = now();
    let sorted = |mut v: Vec<Artifact>| {
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    let (ami, disk) = (recorded_at(&ami, 0), recorded_at(&disk, 0));
    let stored = st.artifacts(b.id).await.expect("artifacts");
    assert!(
        stored.iter().all(|a| before <= a.created_at && a.created_at <= after),
        "artifacts are recorded by the store's clock, as the history is: {stored:?}"
    );
    assert_eq!(
        unstamped(sorted(stored)),
        vec![ami.clone(), disk.clone()],
        "every field is kept; the milestone is the build's, and a new artifact is current"
    );
    let clouds: Vec<(String, Option<String>)> =
        sorted(st.artifacts(b.id).await.expect("artifacts")).into_iter().map(|a| (a.name, a.cloud)).collect();
    assert_eq!(
        clouds,
        vec![("ami/us-east-1".to_owned(), Some("aws".to_owned())), ("disk.qcow2".to_owned(), None)],
        "the cloud is kept, and an artifact in none has none"
    );
    assert_eq!(reload(st, b.id).await.version, b.version + 2, "each artifact is a change: the version moves");

    advance_to(st, b.id, 10).await;
    // Replacing by name replaces the cloud too (an image copied to another cloud).
    let replaced = Artifact {
        uri: "ami-0fff".into(),
        size_bytes: Some(1),
        cloud: Some("openstack".into()),
        ..ami.clone()
    };
    st.add_artifact(b.id, &replaced, Guard::none()).await.expect("replace by name");
    let listed = sorted(st.artifacts(b.id).await.expect("artifacts"));
    assert_eq!(
        unstamped(listed.clone()),
        vec![recorded_at(&replaced, 10), disk],
        "an artifact of the same name is replaced (with the milestone it was recorded at now), not duplicated"
    );
    assert_eq!(sorted(export(st, b.id).await.artifacts), listed, "the document carries the artifacts");
}

/// An artifact recorded without a cloud reads back without one, from the store and
/// through a document — including a document written before artifacts had a cloud
/// (no `cloud` key at all), which imports as one without.
pub async fn an_artifact_without_a_cloud_reads_back_without_one(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let report = Artifact {
        name: "scan.html".into(),
        kind: ArtifactKind::Report,
        cloud: None,
        region: None,
        ..artifact("x", "s3://reports/scan.html")
    };
    st.add_artifact(b.id, &report, Guard::none()).await.expect("add an artifact without a cloud");
    let listed = st.artifacts(b.id).await.expect("artifacts");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].cloud, None, "no cloud was given, none is read back: {listed:?}");
    assert_eq!(unstamped(listed.clone()), vec![recorded_at(&report, 0)]);

    let mut doc =
        serde_json::to_value(renamed(&export(st, b.id).await, "rhel-8.8-base-aws-commercial-20260101-902"))
            .expect("encode the document");
    let artifacts = doc["artifacts"].as_array_mut().expect("the document lists artifacts");
    assert!(artifacts.iter().all(|a| a.get("cloud").is_none()), "no cloud, no key: {artifacts:?}");
    // As a document from before the field: an image with a region but no `cloud` key.
    artifacts[0]["region"] = serde_json::json!("us-east-1");
    let old: BuildDocument = serde_json::from_value(doc).expect("a document without `cloud` keys decodes");
    let copy = st
        .import_build(old.into_parts().expect("valid"), ImportMode::CreateOnly)
        .await
        .expect("a document without clouds imports");
    let imported = st.artifacts(copy.id).await.expect("artifacts of the copy");
    assert_eq!(
        imported.iter().map(|a| (a.region.as_deref(), a.cloud.as_deref())).collect::<Vec<_>>(),
        vec![(Some("us-east-1"), None)],
        "imported without a cloud"
    );
}

/// After a rewind to C, the milestones from C on run again: every artifact recorded at
/// C or later is marked invalidated at the rewind's time, in the rewind's transaction;
/// those of earlier milestones stay current. The marks travel with the document.
pub async fn rewind_invalidates_the_artifacts_of_the_milestones_it_reruns(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let add = |name: &'static str| async move {
        st.add_artifact(b.id, &artifact(name, &format!("s3://images/{name}")), Guard::none())
            .await
            .unwrap_or_else(|e| panic!("add artifact {name}: {e}"));
    };
    advance_to(st, b.id, 10).await;
    add("kickstart.log").await;
    advance_to(st, b.id, 25).await;
    add("disk.qcow2").await;
    advance_to(st, b.id, 45).await;
    add("ami/us-east-1").await;
    add("manifest.json").await;
    let milestones = |artifacts: &[Artifact]| -> Vec<(String, Option<u8>, bool)> {
        artifacts.iter().map(|a| (a.name.clone(), a.milestone.map(|m| m.get()), a.is_current())).collect()
    };
    let recorded = st.artifacts(b.id).await.expect("artifacts");

    // A refused rewind invalidates nothing (assert_rejected compares the whole export).
    assert_rejected!(st, b.id, rewind(50, "forward"), Rejection::RewindForward { .. });
    let version = reload(st, b.id).await.version;
    let outcome = run(st, b.id, rewind(25, "security role changed")).await;
    let rewound_at = outcome.events.last().expect("the rewind event").at;
    assert_eq!(outcome.build.version, version + 1, "one rewind, one change, whatever it invalidates");
    let listed = st.artifacts(b.id).await.expect("artifacts");
    assert_eq!(
        milestones(&listed),
        vec![
            ("kickstart.log".to_owned(), Some(10), true),
            ("disk.qcow2".to_owned(), Some(25), false),
            ("ami/us-east-1".to_owned(), Some(45), false),
            ("manifest.json".to_owned(), Some(45), false),
        ],
        "the rewind target and later milestones are invalidated, in recorded order"
    );
    for (after, before) in listed.iter().zip(&recorded) {
        let expected = if after.is_current() { None } else { Some(rewound_at) };
        assert_eq!(after.invalidated_at, expected, "{} is invalidated at the rewind's time", after.name);
        assert_eq!(&Artifact { invalidated_at: None, ..after.clone() }, before, "nothing else changed");
    }
    let doc = export(st, b.id).await;
    assert_eq!(doc.artifacts, listed, "the document carries the marks");
    let copy = renamed(&doc, "rhel-8.8-base-aws-commercial-20260101-901").into_parts().expect("valid");
    let copy = st
        .import_build(copy, ImportMode::CreateOnly)
        .await
        .expect("a document with invalidated artifacts imports");
    assert_eq!(
        st.artifacts(copy.id).await.expect("artifacts of the copy"),
        listed,
        "and imports them as they are"
    );

    // Re-recording at 25 makes the name current again; a rewind further back then
    // invalidates it and the kickstart log, and leaves the earlier marks as they were.
    add("disk.qcow2").await;
    let again = run(st, b.id, rewind(0, "new base image")).await.events.last().expect("rewind").at;
    let listed = st.artifacts(b.id).await.expect("artifacts");
    let marks: Vec<(&str, Option<jiff::Timestamp>)> =
        listed.iter().map(|a| (a.name.as_str(), a.invalidated_at)).collect();
    assert_eq!(
        marks,
        vec![
            ("kickstart.log", Some(again)),
            ("disk.qcow2", Some(again)),
            ("ami/us-east-1", Some(rewound_at)),
            ("manifest.json", Some(rewound_at)),
        ]
    );
    BuildDocument::parse(&serde_json::to_string(&export(st, b.id).await).expect("encode"))
        .expect("the export replays");
}

// ── documents ────────────────────────────────────────────────────────────────────
