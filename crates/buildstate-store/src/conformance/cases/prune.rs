//! Retention: `prune_build` deletes a finished build whole, in one transaction, and only
//! if it still qualifies as stored there.
//!
//! Rules are cut at a time taken between writes, with a pause on either side, so that
//! "finished before" has one answer on every backend, whose clock (`Tx::now`) is this
//! machine's or its server's on the same machine.

use std::time::Duration;

use buildstate_core::{BuildDocument, BuildId, BuildStatus, FailureClass, LeaseRequest};
use jiff::Timestamp;
use tokio::task::JoinSet;

use crate::conformance::Harness;
use crate::{BuildFilter, FailureFilter, Guard, ImportMode, PruneRule, Store, StoreError, now};

use super::support::*;

const ALL: [BuildStatus; 3] = [BuildStatus::Completed, BuildStatus::Cancelled, BuildStatus::Failed];

/// A time strictly between the writes before and after it.
async fn cut_here() -> Timestamp {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

fn rule(before: Timestamp) -> PruneRule {
    PruneRule::new(ALL, before).expect("finished statuses make a rule")
}

fn runner(ttl: Duration) -> LeaseRequest {
    LeaseRequest { owner: "runner-prune".into(), host: "host-prune".into(), pid: 4242, ttl }
}

/// Delivers a build through a transient failure at 0 and a retry.
async fn delivered(st: &dyn Store) -> BuildId {
    let b = create(st, &seed(st).await).await;
    run(st, b.id, start(0)).await;
    run(st, b.id, fail(0, FailureClass::Transient, 3)).await;
    run(st, b.id, retry(false, Some("mirror back"))).await;
    advance_to(st, b.id, 100).await;
    run(st, b.id, complete(100)).await;
    b.id
}

/// A build failed at 5 whose failure is still unresolved.
async fn failed_open(st: &dyn Store) -> BuildId {
    let b = create(st, &seed(st).await).await;
    advance_to(st, b.id, 5).await;
    run(st, b.id, start(5)).await;
    run(st, b.id, fail(5, FailureClass::Persistent, 3)).await;
    b.id
}

/// Prunes a build that must go; checks that what comes back is what an export said.
async fn prune_whole(st: &dyn Store, id: BuildId, rule: &PruneRule) {
    let before = export(st, id).await;
    match st.prune_build(id, rule).await {
        Ok(Some(doc)) => assert_eq!(doc, before, "prune returns the build as it was deleted"),
        other => panic!("build {} ({}) must be pruned, got {other:?}", before.build_number, before.status),
    }
}

/// Prunes a build that must stay; checks that nothing about it changed.
async fn prune_kept(st: &dyn Store, id: BuildId, rule: &PruneRule, why: &str) {
    let before = export(st, id).await;
    match st.prune_build(id, rule).await {
        Ok(None) => {}
        other => panic!("build {} ({why}) must be kept, got {other:?}", before.build_number),
    }
    assert_eq!(export(st, id).await, before, "a kept build ({why}) was changed by prune");
}

/// Every read of a pruned build says it does not exist, and nothing of it is listed.
async fn assert_gone(st: &dyn Store, doc: &BuildDocument) {
    let (id, number) = (doc.build_id, doc.build_number.as_str());
    let gone = |what: &str, r: Result<(), StoreError>| match r {
        Err(StoreError::BuildNotFound(_)) => {}
        other => panic!("{what} of pruned build {number} must be BuildNotFound, got {other:?}"),
    };
    gone("build", st.build(id).await.map(drop));
    gone("find_build", st.find_build(number).await.map(drop));
    gone("history", st.history(id).await.map(drop));
    gone("artifacts", st.artifacts(id).await.map(drop));
    gone("export_build", st.export_build(id).await.map(drop));
    let of_build = FailureFilter { build: Some(id), ..FailureFilter::default() };
    gone("failures", st.failures(&of_build).await.map(drop));
    gone("prune_build again", st.prune_build(id, &rule(now())).await.map(drop));
    let listed = st.list_builds(&BuildFilter::default()).await.expect("list builds");
    assert!(!listed.iter().any(|b| b.id == id), "pruned build {number} is still listed");
    let failures = st.failures(&FailureFilter::default()).await.expect("all failures");
    assert!(!failures.iter().any(|f| f.build_id == id), "failures of pruned build {number} are still listed");
    let leases = st.leases().await.expect("leases");
    assert!(!leases.iter().any(|l| l.build_id == id), "the lease of pruned build {number} is still listed");
}

pub async fn prune_deletes_old_finished_builds_whole(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let done = delivered(st).await;
    st.add_artifact(done, &artifact("ami/us-east-1", "ami-0abc"), Guard::none()).await.expect("artifact");
    st.add_artifact(done, &artifact("manifest", "s3://b/m.json"), Guard::none()).await.expect("artifact");
    // A runner that ran it and let go: a released lease keeps nothing.
    let lease = st.acquire_lease(done, &runner(Duration::from_secs(30))).await.expect("lease");
    st.release_lease(done, lease.token).await.expect("release");
    let cancelled = create(st, &seed(st).await).await.id;
    advance_to(st, cancelled, 10).await;
    run(st, cancelled, cancel("superseded")).await;
    let resolved = failed_open(st).await;
    st.resolve_failures(resolved, None, "not worth a retry", Guard::none()).await.expect("resolve");
    let other = delivered(st).await;
    let cut = cut_here().await;
    let late = delivered(st).await;
    let kept = [export(st, other).await, export(st, late).await];

    let docs = [export(st, done).await, export(st, cancelled).await, export(st, resolved).await];
    assert_eq!((docs[0].errors.len(), docs[0].artifacts.len()), (1, 2), "the delivered build has records");
    for doc in &docs {
        prune_whole(st, doc.build_id, &rule(cut)).await;
        assert_gone(st, doc).await;
    }
    assert_eq!(export(st, other).await, kept[0], "pruning others leaves a build alone");
    prune_kept(st, late, &rule(cut), "finished after the cut").await;
    assert_eq!(export(st, late).await, kept[1]);

    // Nothing of them is left behind: their documents import again as they were.
    for doc in docs {
        let parts = doc.clone().into_parts().expect("a pruned build's document is valid");
        st.import_build(parts, ImportMode::CreateOnly)
            .await
            .unwrap_or_else(|e| panic!("re-importing pruned build {}: {e}", doc.build_number));
        assert_eq!(export(st, doc.build_id).await, doc, "a pruned build's document round-trips");
    }
}

pub async fn prune_never_touches_running_leased_or_failed_open_builds(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let pending = create(st, &seed(st).await).await.id;
    let running = create(st, &seed(st).await).await.id;
    run(st, running, start(0)).await;
    let leased = delivered(st).await;
    st.acquire_lease(leased, &runner(Duration::from_secs(30))).await.expect("lease");
    // Expired but not taken over: its holder may still be writing.
    let expired = create(st, &seed(st).await).await.id;
    run(st, expired, cancel("stopped")).await;
    let short = st.acquire_lease(expired, &runner(Duration::from_millis(100))).await.expect("lease");
    let open = failed_open(st).await;
    let cut = cut_here().await;
    let wait = short.expires_at.as_microsecond() - now().as_microsecond();
    tokio::time::sleep(Duration::from_micros(u64::try_from(wait).unwrap_or(0)) + Duration::from_millis(20))
        .await;
    assert!(short.is_expired(now()), "the short lease has expired");

    for (id, why) in [
        (pending, "pending"),
        (running, "running"),
        (leased, "leased"),
        (expired, "leased, expired"),
        (open, "failed with an unresolved failure"),
    ] {
        prune_kept(st, id, &rule(cut), why).await;
    }
    // A rule for one status leaves the others alone.
    let only_cancelled = PruneRule::new([BuildStatus::Cancelled], now()).expect("a rule");
    st.break_lease(expired).await.expect("break");
    st.break_lease(leased).await.expect("break");
    prune_kept(st, leased, &only_cancelled, "completed, not named").await;
    prune_whole(st, expired, &only_cancelled).await;
    prune_whole(st, leased, &rule(cut)).await;

    // Resolving is a change: a failed build counts as finished at its last change.
    st.resolve_failures(open, None, "known issue", Guard::none()).await.expect("resolve");
    prune_kept(st, open, &rule(cut), "resolved after the cut").await;
    prune_whole(st, open, &rule(cut_here().await)).await;
    assert_eq!(
        ids(&st.list_builds(&BuildFilter::default()).await.expect("list")),
        vec![running, pending],
        "the open builds are all that is left"
    );
}

pub async fn prune_of_a_build_that_changed_is_a_no_op(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let rewound = delivered(st).await;
    let taken = delivered(st).await;
    let retried = failed_open(st).await;
    st.resolve_failures(retried, None, "retry it", Guard::none()).await.expect("resolve");
    let chosen = rule(cut_here().await);
    // Between choosing the candidates and pruning them, each one moves on.
    run(st, rewound, rewind(95, "redo the publish")).await;
    st.acquire_lease(taken, &runner(Duration::from_secs(30))).await.expect("lease");
    run(st, retried, retry(true, Some("try again"))).await;
    for (id, why) in [(rewound, "rewound"), (taken, "leased meanwhile"), (retried, "retried")] {
        prune_kept(st, id, &chosen, why).await;
    }
    // Delivered again, it finished after the rule's time.
    run(st, rewound, complete(95)).await;
    run(st, rewound, complete(100)).await;
    prune_kept(st, rewound, &chosen, "delivered again after the cut").await;
    prune_whole(st, rewound, &rule(cut_here().await)).await;

    let unknown = BuildId::generate(1_770_000_000_000, 42);
    assert!(
        matches!(st.prune_build(unknown, &chosen).await, Err(StoreError::BuildNotFound(_))),
        "pruning an unknown build is BuildNotFound"
    );
}

pub async fn prune_racing_a_runner_deletes_the_build_or_leaves_it_leased(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let mut builds = Vec::new();
    for _ in 0..6 {
        let b = create(st, &seed(st).await).await.id;
        run(st, b, cancel("stale")).await;
        builds.push(b);
    }
    let chosen = rule(cut_here().await);
    let mut tasks = JoinSet::new();
    for &id in &builds {
        let (pruner, taker, twice) = (h.open().await, h.open().await, h.open().await);
        let chosen = chosen.clone();
        tasks.spawn(async move {
            let request = runner(Duration::from_secs(30));
            let (pruned, again, leased) = tokio::join!(
                pruner.prune_build(id, &chosen),
                twice.prune_build(id, &chosen),
                taker.acquire_lease(id, &request),
            );
            (id, pruned, again, leased)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (id, pruned, again, leased) = joined.expect("race task panicked");
        let deleted = [&pruned, &again].iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        match leased {
            // The runner came first: the build stays, under its lease.
            Ok(lease) => {
                assert_eq!(deleted, 0, "a build leased first was pruned: {pruned:?} / {again:?}");
                assert!(matches!(pruned, Ok(None)) && matches!(again, Ok(None)), "{pruned:?} / {again:?}");
                let listed = st.leases().await.expect("leases");
                assert!(listed.iter().any(|l| is_lease(l, &lease)), "the winning runner holds the build");
                assert_eq!(reload(st, id).await.status, BuildStatus::Cancelled);
            }
            // A pruner came first: exactly one deleted it, and the build is gone.
            Err(StoreError::BuildNotFound(_)) => {
                assert_eq!(deleted, 1, "exactly one pruner deletes: {pruned:?} / {again:?}");
                let loser = if matches!(pruned, Ok(Some(_))) { &again } else { &pruned };
                assert!(matches!(loser, Err(StoreError::BuildNotFound(_))), "the other pruner: {loser:?}");
                assert!(matches!(st.build(id).await, Err(StoreError::BuildNotFound(_))));
            }
            Err(e) => panic!("acquiring a lease on a build being pruned: {e}"),
        }
    }
}
