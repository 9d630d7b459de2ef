//! Object-storage copies against real servers on 127.0.0.1 — moto (S3), azurite (Azure
//! Blob), fake-gcs-server (GCS) — and a local directory: the same scenarios on each.
//!
//! Needs `source scripts/services.sh && start_services` first; without the emulators the
//! tests fail with that instruction (never skip).

#[path = "objstore/conformance.rs"]
mod conformance;
#[path = "objstore/docs.rs"]
mod docs;
#[path = "objstore/failures.rs"]
mod failures;
#[path = "objstore/support.rs"]
mod support;

use buildstate_sync::{PushOutcome, SyncState, Syncer};
use docs::Lineage;
use support::{Backend, Fixture};

const NUMBER: &str = "rhel-9.4-base-aws-commercial-20260212-001";

fn number() -> buildstate_core::BuildNumber {
    buildstate_core::BuildNumber::new(NUMBER).expect("valid number")
}

async fn pushed(syncer: &Syncer, doc: &buildstate_core::BuildDocument) -> PushOutcome {
    syncer.push(doc).await.unwrap_or_else(|e| panic!("push v{}: {e}", doc.version))
}

/// push → pull gives back the same document, from a syncer that never saw it (a fresh
/// worker); listing and status see it; a build without a provider lands under `unknown`.
async fn round_trip(backend: Backend) {
    let fx = Fixture::new(backend, "roundtrip").await;
    let a = fx.syncer("a");
    let mut line = Lineage::new(NUMBER);
    line.complete().complete();
    let v3 = line.doc();

    assert_eq!(pushed(&a, &v3).await, PushOutcome::Pushed { created: true });
    let location = a.location_of(&v3);
    let tail: Vec<_> = location.rsplit('/').take(3).collect();
    assert_eq!(tail, ["state.json", NUMBER, "aws"], "{location}");

    let fresh = fx.syncer("fresh");
    assert_eq!(fresh.pull(&number(), None).await.expect("pull by number"), Some(v3.clone()));
    assert_eq!(fresh.pull(&number(), Some("aws")).await.expect("pull by provider"), Some(v3.clone()));
    assert_eq!(fresh.pull(&number(), Some("gcp")).await.expect("pull elsewhere"), None);

    // Pushing what is already there writes nothing; the next version replaces it.
    assert_eq!(pushed(&a, &v3).await, PushOutcome::AlreadyThere);
    line.complete();
    let v4 = line.doc();
    assert_eq!(pushed(&a, &v4).await, PushOutcome::Pushed { created: false });

    let other = Lineage::new("rhel-9.4-base-aws-commercial-20260212-002").with_provider(None).doc();
    assert_eq!(pushed(&a, &other).await, PushOutcome::Pushed { created: true });
    let listed = a.list().await.expect("list");
    let summary: Vec<_> =
        listed.iter().map(|e| (e.provider.as_str(), e.number.as_str(), e.version, e.size > 0)).collect();
    assert_eq!(
        summary,
        [
            ("aws", NUMBER, Some(v4.version), true),
            ("unknown", other.build_number.as_str(), Some(other.version), true)
        ]
    );

    // The fresh worker's view: in sync, behind, ahead, missing.
    let mut ahead = line.clone();
    ahead.complete();
    let never = Lineage::new("rhel-9.4-base-aws-commercial-20260212-003").doc();
    let states: Vec<_> = fresh
        .status(&[v4.clone(), v3.clone(), ahead.doc(), never])
        .await
        .into_iter()
        .map(|s| (s.local_version, s.remote_version, s.state))
        .collect();
    assert_eq!(
        states,
        [
            (v4.version, Some(v4.version), SyncState::InSync),
            (v3.version, Some(v4.version), SyncState::RemoteNewer),
            (v4.version + 1, Some(v4.version), SyncState::LocalNewer),
            (1, None, SyncState::MissingRemotely),
        ]
    );

    if backend == Backend::File {
        // The copy is a plain, readable JSON file at the documented path.
        let dir = fx.url.strip_prefix("file://").expect("file url");
        let text = std::fs::read_to_string(format!("{dir}/aws/{NUMBER}/state.json")).expect("copy on disk");
        assert_eq!(serde_json::from_str::<buildstate_core::BuildDocument>(&text).expect("json"), v4);
    }
}

/// Two workers with their own state push different versions of one build: every write
/// is conditional, the loser re-reads, and a newer copy is never overwritten.
async fn two_writers(backend: Backend) {
    let fx = Fixture::new(backend, "writers").await;
    let (a, b) = (fx.syncer("a"), fx.syncer("b"));
    let mut base = Lineage::new(NUMBER);
    base.complete();
    assert_eq!(pushed(&a, &base.doc()).await, PushOutcome::Pushed { created: true });

    // B never saw the copy: its create-if-absent fails, it re-reads v2 < v4 and replaces it.
    let mut b_line = base.clone();
    b_line.complete().complete();
    assert_eq!(pushed(&b, &b_line.doc()).await, PushOutcome::Pushed { created: false });

    // A moves on to v3 believing the copy is its v2: the condition fails, the copy is v4.
    let mut a_line = base.clone();
    a_line.complete();
    assert_eq!(
        pushed(&a, &a_line.doc()).await,
        PushOutcome::RemoteNewer { local_version: 3, remote_version: 4 }
    );
    // A diverged v4 (same version, other history) does not win either: it is reported
    // as diverged, not as merely older.
    let mut diverged = base.clone();
    diverged.skip().skip();
    assert_eq!(
        pushed(&a, &diverged.doc()).await,
        PushOutcome::Diverged { local_version: 4, remote_version: 4 }
    );
    assert_eq!(a.pull(&number(), None).await.expect("pull"), Some(b_line.doc()), "B's copy must survive");

    // A, now ahead, replaces the copy it has seen; B's stale v4 cannot go back over it.
    a_line.complete().complete();
    assert_eq!(pushed(&a, &a_line.doc()).await, PushOutcome::Pushed { created: false });
    assert_eq!(
        pushed(&b, &b_line.doc()).await,
        PushOutcome::RemoteNewer { local_version: 4, remote_version: 5 }
    );

    // A race from the same starting point: whoever writes first, the newer version stays.
    let (mut a6, mut b7) = (a_line.clone(), a_line.clone());
    a6.complete();
    b7.complete().complete();
    let (a6, b7) = (a6.doc(), b7.doc());
    let (ra, rb) = tokio::join!(a.push(&a6), b.push(&b7));
    assert_eq!(rb.expect("b races"), PushOutcome::Pushed { created: false });
    let ra = ra.expect("a races");
    assert!(
        matches!(
            ra,
            PushOutcome::Pushed { created: false } | PushOutcome::RemoteNewer { remote_version: 7, .. }
        ),
        "{ra:?}"
    );
    assert_eq!(fx.syncer("c").pull(&number(), None).await.expect("pull"), Some(b7.clone()));

    // Another build that happens to have the same number and provider is refused.
    let mut imposter = Lineage::new(NUMBER);
    for _ in 0..9 {
        imposter.complete();
    }
    let outcome = pushed(&fx.syncer("d"), &imposter.doc()).await;
    assert_eq!(outcome, PushOutcome::OtherBuild { remote_build_id: base.doc().build_id });
    assert_eq!(fx.syncer("e").pull(&number(), None).await.expect("pull"), Some(b7));
}

/// Issue 7, 3.2: two machines continue one build from the same copy. The first to get
/// one version ahead used to replace the other's newer copy, because the re-read after
/// a failed condition became the base of the next write; and `sync status` called the
/// diverged copies in sync when their versions matched.
async fn diverged_copies_are_reported_never_overwritten(backend: Backend) {
    let fx = Fixture::new(backend, "diverged").await;
    let (a, b) = (fx.syncer("a"), fx.syncer("b"));
    let mut base = Lineage::new(NUMBER);
    base.complete();
    assert_eq!(pushed(&a, &base.doc()).await, PushOutcome::Pushed { created: true });
    assert_eq!(b.pull(&number(), None).await.expect("pull"), Some(base.doc()), "b continues from the copy");

    let mut a_line = base.clone();
    a_line.complete();
    assert_eq!(pushed(&a, &a_line.doc()).await, PushOutcome::Pushed { created: false });
    let mut b_line = base.clone();
    b_line.skip();
    assert_eq!(
        pushed(&b, &b_line.doc()).await,
        PushOutcome::Diverged { local_version: 3, remote_version: 3 }
    );
    // One version ahead of the copy: still diverged, still not written.
    b_line.skip();
    assert_eq!(
        pushed(&b, &b_line.doc()).await,
        PushOutcome::Diverged { local_version: 4, remote_version: 3 }
    );
    b_line.skip().skip();
    assert_eq!(
        pushed(&b, &b_line.doc()).await,
        PushOutcome::Diverged { local_version: 6, remote_version: 3 }
    );
    assert_eq!(
        fx.syncer("c").pull(&number(), None).await.expect("pull"),
        Some(a_line.doc()),
        "a's copy survives"
    );

    // Status compares histories, not version numbers.
    let mut same_version = base.clone();
    same_version.skip();
    let states: Vec<SyncState> = b.status(&[same_version.doc()]).await.into_iter().map(|s| s.state).collect();
    assert_eq!(states, vec![SyncState::Diverged], "same version, other history");
    let states: Vec<SyncState> = a.status(&[a_line.doc()]).await.into_iter().map(|s| s.state).collect();
    assert_eq!(states, vec![SyncState::InSync]);
    // And a's own line moves on as before.
    a_line.complete();
    assert_eq!(pushed(&a, &a_line.doc()).await, PushOutcome::Pushed { created: false });
}

macro_rules! every_backend {
    ($($module:ident => $backend:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn push_then_pull_round_trips_the_document() {
                round_trip($backend).await;
            }

            #[tokio::test]
            async fn two_writers_never_overwrite_a_newer_copy() {
                two_writers($backend).await;
            }

            #[tokio::test]
            async fn diverged_copies_are_reported_and_never_overwritten() {
                diverged_copies_are_reported_never_overwritten($backend).await;
            }

            #[tokio::test]
            async fn an_unavailable_target_backlogs_within_the_bound_and_flushes_later() {
                failures::unavailable_then_flush($backend).await;
            }
        }
    )*};
}

every_backend!(s3 => Backend::S3, azure => Backend::Azure, gcs => Backend::Gcs, file => Backend::File);

#[tokio::test]
async fn s3_5xx_answers_are_retried_with_backoff_then_backlogged() {
    failures::server_errors_are_retried().await;
}

#[tokio::test]
async fn s3_an_endpoint_that_never_answers_is_cut_off_at_the_bound() {
    failures::black_hole_is_cut_off().await;
}
