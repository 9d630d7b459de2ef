//! Leases: who runs a build, until when, and fencing by token.
//!
//! Cases that need a lease to be unexpired take it for 30 s; cases that need it expired
//! shorten it (a renewal, or a 100 ms grant) and sleep past it, so that a slow machine
//! can make a case slower but never flip its outcome.

use std::time::Duration;

use buildstate_core::{
    BuildId, BuildNumber, BuildStatus, Command, FailureClass, Lease, LeaseRequest, LeaseToken, NewBuild,
};
use tokio::task::JoinSet;

use crate::conformance::Harness;
use crate::{Guard, ImportMode, Store, StoreError, now};

use super::support::*;

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(100);

fn request(runner: &str, pid: u32, ttl: Duration) -> LeaseRequest {
    LeaseRequest { owner: format!("runner-{runner}"), host: format!("host-{runner}"), pid, ttl }
}

async fn acquire(s: &dyn Store, id: BuildId, req: &LeaseRequest) -> Lease {
    s.acquire_lease(id, req).await.unwrap_or_else(|e| panic!("{} must get the lease: {e}", req.owner))
}

/// Sleeps until `lease` has expired by the store's clock.
async fn outlive(lease: &Lease) {
    let left = lease.expires_at.as_microsecond() - now().as_microsecond();
    let left = u64::try_from(left).unwrap_or(0);
    tokio::time::sleep(Duration::from_micros(left) + Duration::from_millis(20)).await;
    assert!(lease.is_expired(now()), "slept past the expiry of token {}", lease.token);
}

/// Applies `cmd` under `guard`, expecting `StaleLease` for `token` and the store unchanged.
async fn assert_stale(s: &dyn Store, id: BuildId, cmd: Command, guard: Guard, current: Option<&Lease>) {
    let before = export(s, id).await;
    match &s.apply(id, &cmd, guard).await {
        Err(e @ StoreError::StaleLease { token, current: found, .. }) => {
            assert_eq!(Some(*token), guard.lease, "StaleLease names the token that was refused");
            assert!(
                found.as_deref().map_or(current.is_none(), |f| current.is_some_and(|c| is_lease(f, c))),
                "StaleLease names the current lease: {found:?}, not {current:?}"
            );
            let text = e.to_string();
            assert!(text.contains("must stop"), "the message tells the runner to stop: {text}");
            if let Some(l) = current {
                assert!(text.contains(&l.holder()), "the message names the new holder: {text}");
            }
        }
        other => panic!("{} under {guard:?} must be refused with StaleLease, got {other:?}", cmd.name()),
    }
    assert_eq!(export(s, id).await, before, "a write with a stale token changed the store");
}

/// Applies `cmd` without a token, expecting `LeaseHeld` naming `holder` and the store unchanged.
async fn assert_held(s: &dyn Store, id: BuildId, cmd: Command, holder: &Lease) {
    let before = export(s, id).await;
    match &s.apply(id, &cmd, Guard::none()).await {
        Err(e @ StoreError::LeaseHeld { lease, .. }) => {
            assert!(is_lease(lease, holder), "LeaseHeld names the held lease: {lease:?}, not {holder:?}");
            let text = e.to_string();
            assert!(text.contains(&holder.holder()), "the message names the holder: {text}");
            assert!(text.contains("lease break"), "the message says how to break it: {text}");
        }
        other => panic!("{} without a token on a leased build → LeaseHeld, got {other:?}", cmd.name()),
    }
    assert_eq!(export(s, id).await, before, "a refused write changed the store");
}

pub async fn lease_acquire_renew_release(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    assert!(st.leases().await.expect("leases").is_empty(), "a new store holds no lease");
    assert_eq!(st.break_lease(b.id).await.expect("break"), None, "breaking no lease breaks nothing");
    let before = export(st, b.id).await;

    let lease = acquire(st, b.id, &request("a", 101, LONG)).await;
    assert_eq!(lease.build_id, b.id);
    assert_eq!((lease.owner.as_str(), lease.host.as_str(), lease.pid), ("runner-a", "host-a", 101));
    assert_eq!(lease.token.generation(), 1, "the first lease of a build has generation 1");
    assert_eq!(lease.renewed_at, lease.acquired_at);
    assert_eq!(lease.expires_at.as_microsecond() - lease.acquired_at.as_microsecond(), 30_000_000);
    assert!(!lease.is_expired(now()));
    assert_leases(&st.leases().await.expect("leases"), std::slice::from_ref(&lease), "the lease is listed");

    tick().await;
    let renewed = st.renew_lease(b.id, lease.token, Duration::from_secs(60)).await.expect("renew");
    assert_eq!((renewed.token, renewed.acquired_at), (lease.token, lease.acquired_at), "renewal keeps both");
    assert!(renewed.renewed_at > lease.renewed_at, "renewal records the heartbeat");
    assert_eq!(renewed.expires_at.as_microsecond() - renewed.renewed_at.as_microsecond(), 60_000_000);
    assert_leases(&st.leases().await.expect("leases"), std::slice::from_ref(&renewed), "the lease is listed");

    st.release_lease(b.id, lease.token).await.expect("release");
    st.release_lease(b.id, lease.token).await.expect("releasing twice is not an error");
    assert!(st.leases().await.expect("leases").is_empty(), "a released lease is not listed");
    match st.renew_lease(b.id, lease.token, LONG).await {
        Err(StoreError::StaleLease { current: None, .. }) => {}
        other => panic!("renewing a released lease → StaleLease, got {other:?}"),
    }
    assert_eq!(export(st, b.id).await, before, "lease calls do not change the build (nor its version)");

    for (bad, what) in [
        (LeaseRequest { owner: "  ".into(), ..request("a", 1, LONG) }, "a blank owner"),
        (LeaseRequest { host: "h\x1b[2J".into(), ..request("a", 1, LONG) }, "a host with controls"),
        (LeaseRequest { owner: "o".repeat(257), ..request("a", 1, LONG) }, "an owner over 256 bytes"),
        (request("a", 1, Duration::ZERO), "a zero ttl"),
    ] {
        let r = st.acquire_lease(b.id, &bad).await;
        assert!(matches!(r, Err(StoreError::InvalidInput(_))), "{what} → InvalidInput, got {r:?}");
    }
    assert!(st.leases().await.expect("leases").is_empty(), "refused requests grant nothing");
}

pub async fn leases_are_listed_by_build_number(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let new = seed(st).await;
    let numbered =
        |n: &str| NewBuild { number: Some(BuildNumber::new(n).expect("valid number")), ..new.clone() };
    let (zz, aa, mm) = (
        create(st, &numbered("zz-1")).await,
        create(st, &numbered("aa-1")).await,
        create(st, &numbered("mm-1")).await,
    );
    let z = acquire(st, zz.id, &request("z", 1, LONG)).await;
    let a = acquire(st, aa.id, &request("a", 2, SHORT)).await;
    let m = acquire(st, mm.id, &request("m", 3, LONG)).await;
    st.release_lease(mm.id, m.token).await.expect("release");
    outlive(&a).await;
    let listed = st.leases().await.expect("leases");
    assert_leases(&listed, &[a.clone(), z], "held leases by build number, expired ones included");
    assert!(listed[0].is_expired(now()) && !listed[1].is_expired(now()));
}

pub async fn second_acquire_is_refused_naming_the_holder(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let held = acquire(st, b.id, &request("a", 101, LONG)).await;
    for req in [request("b", 202, LONG), request("a", 101, LONG)] {
        match &st.acquire_lease(b.id, &req).await {
            Err(e @ StoreError::LeaseHeld { build, lease }) => {
                assert!(
                    build == &b.number && is_lease(lease, &held),
                    "LeaseHeld names build and holder: {lease:?}"
                );
                let text = e.to_string();
                assert!(text.contains("runner-a@host-a (pid 101)"), "the message names the holder: {text}");
                assert!(text.contains(&held.expires_at.strftime("%Y-%m-%d %H:%M").to_string()), "{text}");
            }
            other => panic!("{} acquiring a held lease → LeaseHeld, got {other:?}", req.owner),
        }
    }
    assert_leases(&st.leases().await.expect("leases"), &[held], "the holder keeps its lease");
}

pub async fn expired_lease_is_taken_over_with_the_next_token(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let old = acquire(st, b.id, &request("a", 101, SHORT)).await;
    outlive(&old).await;
    assert_leases(
        &st.leases().await.expect("leases"),
        std::slice::from_ref(&old),
        "expired, but held until taken over",
    );

    let new = acquire(st, b.id, &request("b", 202, LONG)).await;
    assert_eq!(new.token.generation(), old.token.generation() + 1, "a take-over gets the next token");
    assert_eq!((new.owner.as_str(), new.pid), ("runner-b", 202));
    assert_leases(&st.leases().await.expect("leases"), std::slice::from_ref(&new), "the lease is listed");

    match &st.renew_lease(b.id, old.token, LONG).await {
        Err(e @ StoreError::StaleLease { current, .. }) => {
            let text = e.to_string();
            assert!(current.as_deref().is_some_and(|c| is_lease(c, &new)), "StaleLease names the successor");
            assert!(text.contains("runner-b@host-b (pid 202)") && text.contains("#2"), "{text}");
        }
        other => panic!("a heartbeat after a take-over → StaleLease, got {other:?}"),
    }
    let r = st.release_lease(b.id, old.token).await;
    assert!(
        matches!(r, Err(StoreError::StaleLease { .. })),
        "releasing an old token → StaleLease, got {r:?}"
    );
    assert_leases(&st.leases().await.expect("leases"), &[new], "the old holder cannot touch the new lease");
}

pub async fn stale_token_writes_are_refused_and_change_nothing(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let old = acquire(st, b.id, &request("a", 101, SHORT)).await;
    let started = st.apply(b.id, &start(0), Guard::lease(old.token)).await.expect("the holder writes");
    assert_eq!(started.build.status, BuildStatus::Running);
    outlive(&old).await;
    let new = acquire(st, b.id, &request("b", 202, LONG)).await;

    // The paused runner wakes up and records what it thinks happened.
    let version = reload(st, b.id).await.version;
    for guard in [Guard::lease(old.token), Guard::lease(old.token).and_version(version)] {
        assert_stale(st, b.id, complete(0), guard, Some(&new)).await;
        assert_stale(st, b.id, fail(0, FailureClass::Transient, 3), guard, Some(&new)).await;
        assert_stale(st, b.id, set_meta("k", Some("v")), guard, Some(&new)).await;
    }
    // A token that was never granted is no better — not even the current generation
    // with another secret, which is what a step of another build would hold.
    assert_stale(st, b.id, complete(0), Guard::lease(LeaseToken::new(99)), Some(&new)).await;
    let forged = LeaseToken::new(new.token.get() ^ 1);
    assert_eq!(forged.generation(), new.token.generation());
    assert_stale(st, b.id, complete(0), Guard::lease(forged), Some(&new)).await;

    let done = st.apply(b.id, &start_forced(0), Guard::lease(new.token)).await.expect("the successor writes");
    assert_eq!(done.build.attempt, 2, "the successor abandons the old attempt and starts its own");
    let done = st.apply(b.id, &complete(0), Guard::lease(new.token).and_version(done.build.version)).await;
    assert_eq!(done.expect("current token and version").build.state, code(5));
}

pub async fn untokened_writes_wait_for_the_lease(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let lease = acquire(st, b.id, &request("a", 101, LONG)).await;
    for cmd in [start(0), complete(0), cancel("not needed"), set_meta("k", Some("v")), rewind(0, "again")] {
        assert_held(st, b.id, cmd, &lease).await;
    }
    // Fencing is about take-overs: a holder that let its lease expire still writes
    // while nobody has taken the build over.
    let lease = st.renew_lease(b.id, lease.token, SHORT).await.expect("shorten the lease");
    outlive(&lease).await;
    let o = st.apply(b.id, &start(0), Guard::lease(lease.token)).await.expect("expired but not taken over");
    assert_eq!(o.build.attempt, 1);
    // Once expired, a person may write without a token.
    let o = st.apply(b.id, &complete(0), Guard::none()).await.expect("an expired lease lets people in");
    assert_eq!(o.build.state, code(5));
    assert_leases(&st.leases().await.expect("leases"), &[lease], "writing does not release the lease");
}

pub async fn break_then_acquire_gets_the_next_token(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let lease = acquire(st, b.id, &request("a", 101, LONG)).await;
    let before = export(st, b.id).await;
    let broken = st.break_lease(b.id).await.expect("break");
    assert!(broken.as_ref().is_some_and(|l| is_lease(l, &lease)), "break returns what it broke: {broken:?}");
    assert_eq!(st.break_lease(b.id).await.expect("break again"), None, "nothing left to break");
    assert_eq!(export(st, b.id).await, before, "breaking a lease does not change the build");
    assert!(st.leases().await.expect("leases").is_empty());

    assert_stale(st, b.id, start(0), Guard::lease(lease.token), None).await;
    st.apply(b.id, &start(0), Guard::none()).await.expect("no lease held: a person may write");
    let next = acquire(st, b.id, &request("b", 202, LONG)).await;
    assert_eq!(
        next.token.generation(),
        lease.token.generation() + 1,
        "the next grant after a break gets the next token"
    );
}

pub async fn lease_tokens_never_decrease(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let mut tokens = Vec::new();
    for round in 0..6u32 {
        // Each way a lease ends, twice: released, broken, expired.
        let ttl = if round % 3 == 2 { SHORT } else { LONG };
        let lease = acquire(st, b.id, &request(&format!("r{round}"), round, ttl)).await;
        tokens.push(lease.token.generation());
        match round % 3 {
            0 => st.release_lease(b.id, lease.token).await.expect("release"),
            1 => assert!(st.break_lease(b.id).await.expect("break").is_some()),
            _ => outlive(&lease).await,
        }
    }
    assert_eq!(tokens, (1..=6).collect::<Vec<_>>(), "release, break and expiry each lead to the next token");

    // Replacing the build from a document must not reset the counter: a runner still
    // holding an old token must never find it current again.
    let doc = export(st, b.id).await;
    let held = acquire(st, b.id, &request("r6", 6, LONG)).await;
    let parts = doc.clone().into_parts().expect("an exported document is valid");
    match st.import_build(parts.clone(), ImportMode::Replace).await {
        Err(StoreError::LeaseHeld { lease, .. }) => assert!(is_lease(&lease, &held), "{lease:?}"),
        other => panic!("replacing a build while its lease is held → LeaseHeld, got {other:?}"),
    }
    st.release_lease(b.id, held.token).await.expect("release");
    st.import_build(parts, ImportMode::Replace).await.expect("replace an unleased build");
    let after = acquire(st, b.id, &request("r7", 7, LONG)).await;
    assert_eq!(
        after.token.generation(),
        held.token.generation() + 1,
        "the token counter survives an import --replace"
    );
}

pub async fn concurrent_acquirers_one_wins(h: &impl Harness) {
    let s = h.open().await;
    let b = create(s.as_ref(), &seed(s.as_ref()).await).await;
    let mut tasks = JoinSet::new();
    for runner in 0..16u32 {
        let store = h.open().await;
        tasks.spawn(
            async move { store.acquire_lease(b.id, &request(&runner.to_string(), runner, LONG)).await },
        );
    }
    let (mut winners, mut refused) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("acquirer task panicked") {
            Ok(lease) => winners.push(lease),
            Err(StoreError::LeaseHeld { lease, .. }) => refused.push(*lease),
            Err(e) => panic!("a concurrent acquire either wins or is told who holds the lease: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of 16 concurrent acquirers wins: {winners:?}");
    assert_eq!(refused.len(), 15);
    let winner = &winners[0];
    assert_eq!(winner.token.generation(), 1);
    assert!(refused.iter().all(|l| is_lease(l, winner)), "every loser is told the winner's lease");
    assert_leases(&s.leases().await.expect("leases"), &winners, "the winner holds it");
}

/// Every write a runner's step makes — artifacts and failure resolutions as well as
/// transitions — is fenced by the lease: under the current token it goes through; under
/// a stale one, or without a token while the lease is held, it is refused and changes
/// nothing.
pub async fn artifact_and_resolution_writes_are_fenced(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    run(st, b.id, fail(0, FailureClass::Transient, 5)).await;
    let old = acquire(st, b.id, &request("a", 101, LONG)).await;
    st.add_artifact(b.id, &artifact("ami", "ami-1"), Guard::lease(old.token))
        .await
        .expect("the holder records");
    st.break_lease(b.id).await.expect("break");
    let new = acquire(st, b.id, &request("b", 202, LONG)).await;
    let before = export(st, b.id).await;
    let stale = st.add_artifact(b.id, &artifact("ami", "ami-2"), Guard::lease(old.token)).await;
    assert!(matches!(stale, Err(StoreError::StaleLease { .. })), "stale token → StaleLease, got {stale:?}");
    let stale = st.resolve_failures(b.id, None, "fixed", Guard::lease(old.token)).await;
    assert!(matches!(stale, Err(StoreError::StaleLease { .. })), "stale token → StaleLease, got {stale:?}");
    let untokened = st.resolve_failures(b.id, None, "fixed", Guard::none()).await;
    assert!(matches!(untokened, Err(StoreError::LeaseHeld { .. })), "no token while held, got {untokened:?}");
    let untokened = st.add_artifact(b.id, &artifact("disk", "d"), Guard::none()).await;
    assert!(matches!(untokened, Err(StoreError::LeaseHeld { .. })), "no token while held, got {untokened:?}");
    let moved = st.add_artifact(b.id, &artifact("disk", "d"), Guard::lease(new.token).and_version(1)).await;
    assert!(
        matches!(moved, Err(StoreError::Conflict { .. })),
        "a version precondition holds too, got {moved:?}"
    );
    assert_eq!(export(st, b.id).await, before, "refused writes changed nothing");
    let resolved =
        st.resolve_failures(b.id, None, "fixed", Guard::lease(new.token)).await.expect("current token");
    assert_eq!(resolved.len(), 1);
}

/// A runner that saw a lease's holder is gone takes that exact lease over at once, with
/// the next token; it cannot supersede any other lease.
pub async fn a_dead_holders_lease_is_taken_over_at_once(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    let b = create(st, &seed(st).await).await;
    let dead = acquire(st, b.id, &request("a", 101, LONG)).await;
    let taken = st.take_over_lease(b.id, &request("b", 202, LONG), dead.token).await.expect("superseded");
    assert_eq!(taken.token.generation(), dead.token.generation() + 1);
    assert_leases(&st.leases().await.expect("leases"), std::slice::from_ref(&taken), "the lease is listed");
    // The dead token no longer supersedes anything: the new holder keeps the build.
    match st.take_over_lease(b.id, &request("c", 303, LONG), dead.token).await {
        Err(StoreError::LeaseHeld { lease, .. }) => assert!(is_lease(&lease, &taken), "{lease:?}"),
        other => panic!("superseding with a token that is not the held one → LeaseHeld, got {other:?}"),
    }
    assert_stale(st, b.id, start(0), Guard::lease(dead.token), Some(&taken)).await;
}
