//! The lease rules, written once for every backend: who may acquire, renew and release a
//! build's lease, and which writes the current lease lets through (fencing). Backends
//! read the build's [`LeaseRecord`] inside their write transaction, call these, and
//! store what they return.

use std::time::Duration;

use buildstate_core::{Build, BuildNumber, Lease, LeaseRequest, LeaseToken};
use jiff::{SignedDuration, Timestamp};

use crate::{Guard, StoreError, StoreResult};

/// What a backend keeps per build: the last lease granted and whether it has been
/// released (or broken). The record outlives the release so that the next grant's token
/// is still larger than every token handed out before: tokens never go back, which is
/// what makes "my token is the current one" a proof of ownership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub lease: Lease,
    pub released: bool,
}

impl LeaseRecord {
    /// The lease, unless it was released. An expired lease is still held: its token
    /// stays valid until another runner takes the build over.
    pub fn held(&self) -> Option<&Lease> {
        (!self.released).then_some(&self.lease)
    }
}

/// `expires_at` of a lease granted or renewed at `now` for `ttl`, in whole microseconds
/// like every stored time (see [`crate::now`]).
fn expiry(now: Timestamp, ttl: Duration) -> StoreResult<Timestamp> {
    let invalid = || StoreError::InvalidInput(format!("a lease ttl of {ttl:?} is out of range"));
    if ttl.is_zero() {
        return Err(StoreError::InvalidInput("a lease needs a ttl above zero".into()));
    }
    let ttl = SignedDuration::try_from(ttl).map_err(|_| invalid())?;
    let at = now.checked_add(ttl).map_err(|_| invalid())?;
    Timestamp::from_microsecond(at.as_microsecond()).map_err(|_| invalid())
}

/// Grants the lease of `build` to `request`, or refuses with `LeaseHeld` while another
/// lease is held and unexpired. The new token's generation is one above the last one
/// granted (1 for the first), whether the last lease expired, was released or was
/// broken; `secret` (random bits) makes it unguessable.
pub fn plan_acquire(
    build: &Build,
    record: Option<&LeaseRecord>,
    request: &LeaseRequest,
    now: Timestamp,
    secret: u64,
) -> StoreResult<Lease> {
    crate::check::check_lease_request(request)?;
    let token = match record {
        None => LeaseToken::first(secret),
        Some(r) => {
            if let Some(held) = r.held().filter(|l| !l.is_expired(now)) {
                return Err(StoreError::LeaseHeld {
                    build: build.number.clone(),
                    lease: Box::new(held.clone()),
                });
            }
            r.lease.token.next(secret).ok_or_else(|| StoreError::Backend {
                context: "lease token counter",
                source: format!("build {}: every lease token has been used", build.number).into(),
            })?
        }
    };
    Ok(Lease {
        build_id: build.id,
        owner: request.owner.trim().to_owned(),
        host: request.host.trim().to_owned(),
        pid: request.pid,
        token,
        acquired_at: now,
        renewed_at: now,
        expires_at: expiry(now, request.ttl)?,
    })
}

/// [`plan_acquire`], treating the held lease as expired when its token is `dead`: the
/// caller checked that its holder is gone. Any other held, unexpired lease still wins.
pub fn plan_take_over(
    build: &Build,
    record: Option<&LeaseRecord>,
    request: &LeaseRequest,
    dead: LeaseToken,
    now: Timestamp,
    secret: u64,
) -> StoreResult<Lease> {
    match record {
        Some(r) if r.held().is_some_and(|l| l.token == dead) => {
            let expired = LeaseRecord { released: true, ..r.clone() };
            plan_acquire(build, Some(&expired), request, now, secret)
        }
        _ => plan_acquire(build, record, request, now, secret),
    }
}

/// A heartbeat: extends the lease of `token` to `now + ttl`. Only the current,
/// unreleased token may renew — also after it expired, as long as nobody took over: a
/// late heartbeat from a slow runner is still the owner's heartbeat.
pub fn plan_renew(
    build: &Build,
    record: Option<&LeaseRecord>,
    token: LeaseToken,
    ttl: Duration,
    now: Timestamp,
) -> StoreResult<Lease> {
    let held = current(build, record, token)?;
    Ok(Lease { renewed_at: now, expires_at: expiry(now, ttl)?, ..held.clone() })
}

/// Whether releasing `token` changes anything: `true` to mark the lease released,
/// `false` when it already is (releasing twice is not an error). An older token, or one
/// never granted, is `StaleLease`.
pub fn plan_release(build: &Build, record: Option<&LeaseRecord>, token: LeaseToken) -> StoreResult<bool> {
    match record {
        Some(r) if r.lease.token == token => Ok(!r.released),
        _ => Err(stale(build, token, record)),
    }
}

/// The fencing rule, checked before every transition: a write under `guard.lease` needs
/// that token to be the build's current, unreleased lease (expired or not); a write
/// without a token is refused while somebody holds an unexpired lease.
pub fn check_fence(build: &Build, held: Option<&Lease>, guard: Guard, now: Timestamp) -> StoreResult<()> {
    match (guard.lease, held) {
        (Some(token), Some(lease)) if lease.token == token => Ok(()),
        (Some(token), _) => Err(StoreError::StaleLease {
            build: build.number.clone(),
            token,
            current: held.cloned().map(Box::new),
        }),
        (None, Some(lease)) if !lease.is_expired(now) => {
            Err(StoreError::LeaseHeld { build: build.number.clone(), lease: Box::new(lease.clone()) })
        }
        (None, _) => Ok(()),
    }
}

/// The held lease if its token is `token`; `StaleLease` otherwise.
fn current<'r>(build: &Build, record: Option<&'r LeaseRecord>, token: LeaseToken) -> StoreResult<&'r Lease> {
    record.and_then(LeaseRecord::held).filter(|l| l.token == token).ok_or_else(|| stale(build, token, record))
}

fn stale(build: &Build, token: LeaseToken, record: Option<&LeaseRecord>) -> StoreError {
    StoreError::StaleLease {
        build: build.number.clone(),
        token,
        current: record.and_then(LeaseRecord::held).cloned().map(Box::new),
    }
}

/// The message of `StoreError::StaleLease`.
pub(crate) fn stale_message(build: &BuildNumber, token: &LeaseToken, current: Option<&Lease>) -> String {
    let head = format!("lease token {token} on build {build}");
    match current {
        Some(l) if l.token.generation() > token.generation() => format!(
            "{head} is stale: {} took it over with token {}; this runner must stop",
            l.holder(),
            l.token
        ),
        Some(l) => format!(
            "{head} was never granted (the current lease is token {}, held by {}); this runner must stop",
            l.token,
            l.holder()
        ),
        None => format!("{head} is stale: the lease was released or broken; this runner must stop"),
    }
}

/// `2026-02-12 10:04:05Z`: how lease messages show an expiry.
pub(crate) fn show_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use buildstate_core::{BuildId, NewBuild, StateCatalog};

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_770_000_000 + s).expect("valid time")
    }

    fn build() -> Build {
        let name = |s: &str| buildstate_core::Name::new(s).expect("valid name");
        let new = NewBuild {
            platform: name("aws-commercial"),
            os: name("rhel-8.8"),
            image_type: name("base"),
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: "test".into(),
            ci_url: None,
            metadata: BTreeMap::new(),
        };
        let number = BuildNumber::new("b-1").expect("valid number");
        Build::create(BuildId::generate(1_000, 7), number, new, at(0)).0
    }

    fn request(owner: &str, ttl_s: u64) -> LeaseRequest {
        LeaseRequest {
            owner: owner.into(),
            host: "worker-1".into(),
            pid: 42,
            ttl: Duration::from_secs(ttl_s),
        }
    }

    fn record(lease: Lease, released: bool) -> LeaseRecord {
        LeaseRecord { lease, released }
    }

    #[test]
    fn acquire_counts_tokens_and_refuses_while_held() {
        let b = build();
        let first = plan_acquire(&b, None, &request("a", 30), at(0), 7).expect("first grant");
        assert_eq!((first.token, first.expires_at), (LeaseToken::first(7), at(30)));
        let held = record(first.clone(), false);
        match plan_acquire(&b, Some(&held), &request("b", 30), at(29), 7) {
            Err(StoreError::LeaseHeld { lease, .. }) => assert_eq!(*lease, first),
            other => panic!("held and unexpired → LeaseHeld, got {other:?}"),
        }
        let taken = plan_acquire(&b, Some(&held), &request("b", 30), at(30), 7).expect("expired: take over");
        assert_eq!((taken.token.generation(), taken.owner.as_str()), (2, "b"));
        let after_release = plan_acquire(&b, Some(&record(taken, true)), &request("c", 5), at(31), 7);
        assert_eq!(after_release.expect("released: grant").token.generation(), 3, "tokens never go back");
    }

    #[test]
    fn renew_and_release_need_the_current_token() {
        let b = build();
        let lease = plan_acquire(&b, None, &request("a", 30), at(0), 7).expect("grant");
        let held = record(lease.clone(), false);
        let renewed = plan_renew(&b, Some(&held), lease.token, Duration::from_secs(30), at(40))
            .expect("an expired lease nobody took over renews");
        assert_eq!((renewed.acquired_at, renewed.renewed_at, renewed.expires_at), (at(0), at(40), at(70)));
        let old = LeaseToken::new(0);
        assert!(matches!(
            plan_renew(&b, Some(&held), old, Duration::from_secs(1), at(1)),
            Err(StoreError::StaleLease { .. })
        ));
        assert_eq!(plan_release(&b, Some(&held), lease.token).ok(), Some(true));
        assert_eq!(plan_release(&b, Some(&record(lease.clone(), true)), lease.token).ok(), Some(false));
        assert!(matches!(plan_release(&b, None, lease.token), Err(StoreError::StaleLease { .. })));
        assert!(matches!(
            plan_renew(&b, Some(&record(lease.clone(), true)), lease.token, Duration::from_secs(1), at(1)),
            Err(StoreError::StaleLease { current: None, .. })
        ));
    }

    #[test]
    fn fencing() {
        let b = build();
        let lease = plan_acquire(&b, None, &request("a", 30), at(0), 7).expect("grant");
        let t = lease.token;
        assert!(check_fence(&b, Some(&lease), Guard::lease(t), at(10)).is_ok());
        assert!(
            check_fence(&b, Some(&lease), Guard::lease(t), at(99)).is_ok(),
            "expiry alone does not fence"
        );
        assert!(matches!(
            check_fence(&b, Some(&lease), Guard::none(), at(10)),
            Err(StoreError::LeaseHeld { .. })
        ));
        assert!(
            check_fence(&b, Some(&lease), Guard::none(), at(30)).is_ok(),
            "an expired lease lets people in"
        );
        assert!(check_fence(&b, None, Guard::none(), at(0)).is_ok());
        let e = check_fence(&b, None, Guard::lease(t), at(1)).expect_err("no lease held");
        assert!(e.to_string().contains("released or broken"), "{e}");
        let newer = Lease { token: t.next(9).expect("next"), owner: "b".into(), ..lease.clone() };
        let e = check_fence(&b, Some(&newer), Guard::lease(t), at(1)).expect_err("taken over");
        assert_eq!(
            e.to_string(),
            "lease token #1 on build b-1 is stale: b@worker-1 (pid 42) took it over with token #2; this runner must stop"
        );
        // The right generation with the wrong secret (a token of another build, or a
        // guess) is no token at all.
        let forged = LeaseToken::new(t.get() ^ 1);
        let e = check_fence(&b, Some(&lease), Guard::lease(forged), at(1)).expect_err("forged");
        assert!(e.to_string().contains("was never granted"), "{e}");
        assert!(!e.to_string().contains(&t.get().to_string()), "messages never show the secret: {e}");
    }

    #[test]
    fn ttl_must_be_positive_and_representable() {
        let b = build();
        for ttl in [Duration::ZERO, Duration::MAX] {
            let r = plan_acquire(&b, None, &LeaseRequest { ttl, ..request("a", 1) }, at(0), 7);
            assert!(matches!(r, Err(StoreError::InvalidInput(_))), "{ttl:?}: {r:?}");
        }
        let sub_micro = LeaseRequest { ttl: Duration::from_nanos(1_500), ..request("a", 1) };
        let l = plan_acquire(&b, None, &sub_micro, at(0), 7).expect("grant");
        assert_eq!(l.expires_at.as_microsecond(), at(0).as_microsecond() + 1, "stored times are whole µs");
    }
}
