//! Retention: which builds [`crate::Store::prune_build`] may delete.
//!
//! One rule, asked twice: by a caller choosing candidates (to say why a build stays),
//! and by the engine on the build as stored in the deleting transaction (to decide).
//! Only the second answer counts: a build may be picked up, leased or rewound between
//! the two.

use std::fmt;

use buildstate_core::{Build, BuildStatus, Lease};
use jiff::Timestamp;

use crate::{StoreError, StoreResult};

/// Which finished builds go: those of one of `statuses` that finished before
/// `ended_before`. Pending and running builds are never named (see [`PruneRule::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneRule {
    statuses: Vec<BuildStatus>,
    ended_before: Timestamp,
}

/// Why a build stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Its status is not one the rule names; pending and running builds never are.
    Status,
    /// It finished at or after the rule's time.
    Recent,
    /// A lease on it is held, expired or not: its runner may still be on it (an expired
    /// lease's holder keeps writing until somebody takes over). A released or broken
    /// lease keeps nothing.
    Leased,
    /// Failed, with failure records nobody has resolved: nobody has looked at it yet.
    FailedOpen,
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kept::Status => "its status is not pruned",
            Kept::Recent => "it finished too recently",
            Kept::Leased => "a runner holds its lease",
            Kept::FailedOpen => "it failed and its failures are unresolved",
        })
    }
}

impl PruneRule {
    /// The statuses a rule may name: those of builds nobody is running or about to run.
    pub const PRUNABLE: [BuildStatus; 3] =
        [BuildStatus::Completed, BuildStatus::Cancelled, BuildStatus::Failed];

    /// A rule over `statuses` (duplicates dropped). `InvalidInput` for none, or for a
    /// pending or running one: those builds are in somebody's hands.
    pub fn new(
        statuses: impl IntoIterator<Item = BuildStatus>,
        ended_before: Timestamp,
    ) -> StoreResult<Self> {
        let mut kept = Vec::new();
        for s in statuses {
            if !Self::PRUNABLE.contains(&s) {
                return Err(StoreError::InvalidInput(format!(
                    "{s} builds are never pruned: a runner has them or is about to; prune takes completed, cancelled and failed builds"
                )));
            }
            if !kept.contains(&s) {
                kept.push(s);
            }
        }
        if kept.is_empty() {
            return Err(StoreError::InvalidInput("a prune rule needs at least one status".into()));
        }
        Ok(PruneRule { statuses: kept, ended_before })
    }

    pub fn statuses(&self) -> &[BuildStatus] {
        &self.statuses
    }

    pub fn ended_before(&self) -> Timestamp {
        self.ended_before
    }

    /// When `build` finished, as retention judges it: `ended_at` of a completed or
    /// cancelled build; for a failed build, which has no end (a retry reopens it), its
    /// last change (`updated_at`: the failure, or a later resolution); `None` while it is
    /// pending or running.
    pub fn finished_at(build: &Build) -> Option<Timestamp> {
        match build.status {
            BuildStatus::Completed | BuildStatus::Cancelled => build.ended_at,
            BuildStatus::Failed => Some(build.updated_at),
            BuildStatus::Pending | BuildStatus::Running => None,
        }
    }

    /// Why `build` stays, if it does: `held` is its unreleased lease (expired or not),
    /// `unresolved` how many of its failure records are unresolved.
    pub fn keeps(&self, build: &Build, held: Option<&Lease>, unresolved: usize) -> Option<Kept> {
        if !Self::PRUNABLE.contains(&build.status) || !self.statuses.contains(&build.status) {
            return Some(Kept::Status);
        }
        if Self::finished_at(build).is_none_or(|t| t >= self.ended_before) {
            return Some(Kept::Recent);
        }
        if held.is_some() {
            return Some(Kept::Leased);
        }
        if build.status == BuildStatus::Failed && unresolved > 0 {
            return Some(Kept::FailedOpen);
        }
        None
    }

    /// Whether `build` goes (see [`PruneRule::keeps`]).
    pub fn qualifies(&self, build: &Build, held: Option<&Lease>, unresolved: usize) -> bool {
        self.keeps(build, held, unresolved).is_none()
    }
}

#[cfg(test)]
mod tests {
    use buildstate_core::{BuildId, BuildNumber, LeaseToken, Name, NewBuild, StateCatalog, StateCode};
    use jiff::SignedDuration;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a test time")
    }

    fn build(status: BuildStatus, changed: &str) -> Build {
        let name = |s: &str| Name::new(s).expect("a test name");
        let new = NewBuild {
            platform: name("aws"),
            os: name("rhel-9.6"),
            image_type: name("base"),
            number: None,
            catalog: StateCatalog::default_catalog(),
            created_by: "t".into(),
            ci_url: None,
            metadata: Default::default(),
        };
        let id = BuildId::generate(1_770_000_000_000, 7);
        let number = BuildNumber::new("rhel-9.6-base-aws-20260101-001").expect("a test number");
        let (mut b, _) = Build::create(id, number, new, at("2026-01-01T00:00:00Z"));
        b.status = status;
        b.updated_at = at(changed);
        b.ended_at = status.is_terminal().then(|| at(changed));
        if status == BuildStatus::Completed {
            b.state = StateCode::DELIVERED;
        }
        b
    }

    fn lease(b: &Build) -> Lease {
        let t = at("2026-01-02T00:00:00Z");
        Lease {
            build_id: b.id,
            owner: "runner".into(),
            host: "host".into(),
            pid: 1,
            token: LeaseToken::first(9),
            acquired_at: t,
            renewed_at: t,
            expires_at: t.checked_add(SignedDuration::from_secs(60)).expect("in range"),
        }
    }

    #[test]
    fn running_and_pending_builds_are_never_named() {
        let cut = at("2026-06-01T00:00:00Z");
        for s in [BuildStatus::Running, BuildStatus::Pending] {
            assert!(PruneRule::new([BuildStatus::Completed, s], cut).is_err(), "{s}");
        }
        assert!(PruneRule::new([], cut).is_err(), "no status at all");
        let rule = PruneRule::new([BuildStatus::Completed, BuildStatus::Completed], cut).expect("valid");
        assert_eq!(rule.statuses(), [BuildStatus::Completed], "duplicates dropped");
    }

    #[test]
    fn only_old_unleased_finished_builds_of_the_named_statuses_go() {
        let rule = PruneRule::new([BuildStatus::Completed, BuildStatus::Failed], at("2026-06-01T00:00:00Z"))
            .expect("valid");
        let old = "2026-03-01T00:00:00Z";
        let done = build(BuildStatus::Completed, old);
        assert_eq!(rule.keeps(&done, None, 0), None);
        assert_eq!(rule.keeps(&done, None, 3), None, "unresolved failures of a delivered build keep nothing");
        assert_eq!(rule.keeps(&done, Some(&lease(&done)), 0), Some(Kept::Leased));
        assert_eq!(
            rule.keeps(&build(BuildStatus::Completed, "2026-06-01T00:00:00Z"), None, 0),
            Some(Kept::Recent)
        );
        assert_eq!(rule.keeps(&build(BuildStatus::Cancelled, old), None, 0), Some(Kept::Status));
        for open in [BuildStatus::Running, BuildStatus::Pending] {
            assert_eq!(rule.keeps(&build(open, old), None, 0), Some(Kept::Status), "{open}");
        }
        let failed = build(BuildStatus::Failed, old);
        assert_eq!(PruneRule::finished_at(&failed), Some(failed.updated_at), "a failed build's last change");
        assert_eq!(rule.keeps(&failed, None, 1), Some(Kept::FailedOpen));
        assert!(rule.qualifies(&failed, None, 0));
    }
}
