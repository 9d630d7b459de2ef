//! Whether a build has reached a milestone, will still reach it, or never will: what
//! `buildstate wait` blocks on, and what a CI job gating on another build asks.
//!
//! A milestone is reached once the build is past it (completed or skipped: the build's
//! state is a later code) or the build is delivered. A failed build will still reach
//! it only while a runner holds its lease (it is inside its retry backoff); without one,
//! or once it needs a person, nobody will retry it, and waiting longer is pointless.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;

use crate::{Build, BuildStatus, EventKind, HistoryEvent, StateCatalog, StateCode};

/// What to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// The milestone is done (completed or skipped).
    Milestone(StateCode),
    /// The whole build is delivered.
    Delivered,
}

impl FromStr for Until {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("delivered") {
            return Ok(Until::Delivered);
        }
        s.parse::<StateCode>().map(Until::Milestone).map_err(|e| {
            format!("`{s}` is neither a milestone code nor `delivered` ({e}); give a code such as 90, or delivered")
        })
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::Milestone(c) => write!(f, "milestone {c}"),
            Until::Delivered => f.write_str("delivery"),
        }
    }
}

/// Where a build stands against an [`Until`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    Reached,
    /// Not yet; it may still get there.
    Waiting,
    /// It will not get there without a person: why, in a sentence.
    Never(String),
}

/// Decides for `b`; `runner_holds` says whether a live lease is held on it.
pub fn gate(b: &Build, until: Until, runner_holds: bool) -> Gate {
    let reached = match until {
        _ if b.status == BuildStatus::Completed => true,
        Until::Delivered => false,
        Until::Milestone(code) => b.state > code,
    };
    if reached {
        return Gate::Reached;
    }
    let here = format!("{} ({})", b.state, b.state_name());
    match b.status {
        BuildStatus::Cancelled => Gate::Never(format!("build {} was cancelled at {here}", b.number)),
        BuildStatus::Failed if b.needs_intervention => {
            Gate::Never(format!("build {} failed at {here} and needs a person", b.number))
        }
        BuildStatus::Failed if !runner_holds => Gate::Never(format!(
            "build {} failed at {here} and no runner holds it to retry (`buildstate resume {}` says what next)",
            b.number, b.number
        )),
        _ => Gate::Waiting,
    }
}

/// When the build last got past `until`, from its history (oldest first): the first
/// completion or skip at or above the milestone since the last rewind to or below it.
/// `None` while it is not past it. A rewound and re-run build reaches it again, later:
/// a CI engine that orders versions by this time sees it as new.
pub fn reached_at(history: &[HistoryEvent], catalog: &StateCatalog, until: Until) -> Option<Timestamp> {
    let code = match until {
        Until::Milestone(c) => c,
        Until::Delivered => catalog.codes().last()?,
    };
    let mut at = None;
    for e in history {
        match e.kind {
            EventKind::Completed | EventKind::Skipped if e.state >= code && at.is_none() => at = Some(e.at),
            EventKind::Rewound if e.state <= code => at = None,
            _ => {}
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(state: i64, status: BuildStatus) -> Build {
        let mut b = crate::build::test_build();
        b.state = StateCode::new(state).expect("a code");
        b.status = status;
        b
    }

    #[test]
    fn a_milestone_is_reached_once_the_build_is_past_it_or_delivered() {
        let until = Until::Milestone(StateCode::new(90).expect("a code"));
        assert_eq!(gate(&at(95, BuildStatus::Pending), until, false), Gate::Reached);
        assert_eq!(gate(&at(90, BuildStatus::Running), until, true), Gate::Waiting);
        assert_eq!(gate(&at(100, BuildStatus::Completed), until, false), Gate::Reached);
        assert_eq!(gate(&at(100, BuildStatus::Running), Until::Delivered, true), Gate::Waiting);
        assert_eq!(gate(&at(100, BuildStatus::Completed), Until::Delivered, false), Gate::Reached);
        // Past it is reached, whatever happened later.
        assert_eq!(gate(&at(95, BuildStatus::Failed), until, false), Gate::Reached);
    }

    #[test]
    fn a_failure_nobody_retries_or_a_cancel_is_never() {
        let until = Until::Milestone(StateCode::new(90).expect("a code"));
        assert_eq!(gate(&at(15, BuildStatus::Failed), until, true), Gate::Waiting, "its runner retries");
        assert!(
            matches!(gate(&at(15, BuildStatus::Failed), until, false), Gate::Never(w) if w.contains("no runner"))
        );
        let mut stuck = at(15, BuildStatus::Failed);
        stuck.needs_intervention = true;
        assert!(matches!(gate(&stuck, until, true), Gate::Never(w) if w.contains("needs a person")));
        assert!(
            matches!(gate(&at(15, BuildStatus::Cancelled), until, false), Gate::Never(w) if w.contains("cancelled"))
        );
    }

    #[test]
    fn reached_at_is_the_last_time_the_build_got_past_it() {
        let code = |c: i64| StateCode::new(c).expect("a code");
        let t = |s: i64| Timestamp::from_second(s).expect("a time");
        let event = |seq: u64, at: i64, kind: EventKind, state: i64| {
            HistoryEvent::new(seq, t(at), kind, code(state), "t")
        };
        let catalog = StateCatalog::default_catalog();
        let until = Until::Milestone(code(10));
        let mut h = vec![event(1, 1, EventKind::Created, 0), event(2, 2, EventKind::Completed, 5)];
        assert_eq!(reached_at(&h, &catalog, until), None);
        h.push(event(3, 3, EventKind::Skipped, 10));
        h.push(event(4, 4, EventKind::Completed, 15));
        assert_eq!(reached_at(&h, &catalog, until), Some(t(3)));
        h.push(event(5, 5, EventKind::Rewound, 10));
        assert_eq!(reached_at(&h, &catalog, until), None, "rewound to it: not past it any more");
        h.push(event(6, 6, EventKind::Completed, 10));
        assert_eq!(reached_at(&h, &catalog, until), Some(t(6)));
        assert_eq!(reached_at(&h, &catalog, Until::Delivered), None);
        h.push(event(7, 7, EventKind::Completed, 100));
        assert_eq!(reached_at(&h, &catalog, Until::Delivered), Some(t(7)));
    }

    #[test]
    fn until_reads_a_code_or_delivered() {
        assert_eq!("delivered".parse::<Until>(), Ok(Until::Delivered));
        assert_eq!(" 90 ".parse::<Until>(), Ok(Until::Milestone(StateCode::new(90).expect("a code"))));
        assert!("ninety".parse::<Until>().is_err_and(|e| e.contains("delivered")));
        assert!("250".parse::<Until>().is_err());
    }
}
