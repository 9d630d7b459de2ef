//! The worker registry: one record per fleet worker (`buildstate worker`), so that
//! `buildstate workers` shows idle workers and dead ones too, not only the holders of
//! leases.
//!
//! A worker writes its record when it starts, on every heartbeat, when it takes or
//! finishes a build, and when it exits cleanly (marked exited). A worker killed without
//! a chance to say so simply stops beating: its record goes *stale* once the store has
//! not heard from it for [`STALE_HEARTBEATS`] of its heartbeat intervals.
//!
//! Pure data: the store reads the clock (its own, like for leases) and writes records.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::BuildId;

/// How many missed heartbeats make a worker stale: one late beat (a slow store, a busy
/// lock) is not enough, three in a row are a worker that is gone or cut off.
pub const STALE_HEARTBEATS: u32 = 3;

/// What a worker says about itself when it beats (or exits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerBeat {
    /// The worker's name (`--name`, default `worker-<host>-<pid>`): the key of its record.
    pub name: String,
    pub host: String,
    pub pid: u32,
    /// How often it beats; the record goes stale after [`STALE_HEARTBEATS`] of these.
    pub heartbeat: Duration,
    /// The build it is running, `None` when idle.
    pub build: Option<BuildId>,
    /// The first beat of this process: the record starts afresh (`started_at` now).
    pub starting: bool,
}

/// A worker as the store last heard from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerRecord {
    pub name: String,
    pub host: String,
    pub pid: u32,
    /// When this process first beat (the store's clock).
    pub started_at: Timestamp,
    /// Its last beat (the store's clock).
    pub last_seen: Timestamp,
    /// The interval it promised to beat at, in milliseconds.
    pub heartbeat_ms: u64,
    /// The build it was running at its last beat; `None` when idle or exited.
    pub build: Option<BuildId>,
    /// When it exited cleanly; `None` while it runs, or after it died without saying so.
    pub exited_at: Option<Timestamp>,
}

/// How a worker stands, as `buildstate workers` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Beating, running the record's build.
    Running,
    /// Beating, with no build.
    Idle,
    /// Not heard from for [`STALE_HEARTBEATS`] heartbeats: gone or cut off.
    Stale,
    /// Said goodbye.
    Exited,
}

impl WorkerRecord {
    /// How long after its last beat the worker counts as stale.
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms).saturating_mul(STALE_HEARTBEATS)
    }

    /// Not exited, and silent for longer than [`WorkerRecord::stale_after`] at `now`.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        let limit = SignedDuration::try_from(self.stale_after()).unwrap_or(SignedDuration::MAX);
        self.exited_at.is_none() && self.age(now) > limit
    }

    /// How long ago the worker was last seen at `now` (zero if the clock went back).
    pub fn age(&self, now: Timestamp) -> SignedDuration {
        now.duration_since(self.last_seen).max(SignedDuration::ZERO)
    }

    pub fn state(&self, now: Timestamp) -> WorkerState {
        if self.exited_at.is_some() {
            WorkerState::Exited
        } else if self.is_stale(now) {
            WorkerState::Stale
        } else if self.build.is_some() {
            WorkerState::Running
        } else {
            WorkerState::Idle
        }
    }

    /// The record after `beat` at `now`, given the record as stored (`None` for a new
    /// worker). A beat of a process other than the stored one (a restart, another pid
    /// or host under the same name) or the first beat of a process starts the record
    /// afresh.
    pub fn after_beat(stored: Option<&WorkerRecord>, beat: &WorkerBeat, now: Timestamp) -> WorkerRecord {
        let same_process = stored
            .filter(|r| !beat.starting && r.exited_at.is_none() && r.pid == beat.pid && r.host == beat.host);
        WorkerRecord {
            name: beat.name.clone(),
            host: beat.host.clone(),
            pid: beat.pid,
            started_at: same_process.map_or(now, |r| r.started_at),
            last_seen: now,
            heartbeat_ms: u64::try_from(beat.heartbeat.as_millis()).unwrap_or(u64::MAX).max(1),
            build: beat.build,
            exited_at: None,
        }
    }

    /// The record after the worker of `beat` exited at `now`; `None` when the stored
    /// record belongs to another process (a newer worker under the same name).
    pub fn after_exit(stored: &WorkerRecord, beat: &WorkerBeat, now: Timestamp) -> Option<WorkerRecord> {
        (stored.pid == beat.pid && stored.host == beat.host).then(|| WorkerRecord {
            last_seen: now,
            build: None,
            exited_at: Some(now),
            ..stored.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_770_000_000 + s).expect("time")
    }

    fn beat(pid: u32, starting: bool) -> WorkerBeat {
        WorkerBeat {
            name: "w1".into(),
            host: "h".into(),
            pid,
            heartbeat: Duration::from_secs(10),
            build: None,
            starting,
        }
    }

    #[test]
    fn a_record_keeps_its_start_while_the_same_process_beats() {
        let first = WorkerRecord::after_beat(None, &beat(7, true), t(0));
        assert_eq!((first.started_at, first.last_seen, first.heartbeat_ms), (t(0), t(0), 10_000));
        let later = WorkerRecord::after_beat(Some(&first), &beat(7, false), t(10));
        assert_eq!((later.started_at, later.last_seen), (t(0), t(10)));
        // A restart, another pid, or a beat after an exit start over.
        assert_eq!(WorkerRecord::after_beat(Some(&later), &beat(7, true), t(20)).started_at, t(20));
        assert_eq!(WorkerRecord::after_beat(Some(&later), &beat(8, false), t(20)).started_at, t(20));
        let exited = WorkerRecord::after_exit(&later, &beat(7, false), t(15)).expect("its own record");
        assert_eq!(WorkerRecord::after_beat(Some(&exited), &beat(7, false), t(20)).started_at, t(20));
        assert_eq!(WorkerRecord::after_exit(&later, &beat(8, false), t(15)), None, "not another's record");
    }

    #[test]
    fn stale_after_three_missed_heartbeats_never_once_exited() {
        let mut r = WorkerRecord::after_beat(None, &beat(7, true), t(0));
        assert_eq!(r.state(t(30)), WorkerState::Idle, "three heartbeats late is still in time");
        assert_eq!(r.state(t(31)), WorkerState::Stale);
        assert_eq!(r.age(t(-5)), SignedDuration::ZERO, "a clock that went back shows no negative age");
        r.build = Some(BuildId::generate(1_770_000_000_000, 1));
        assert_eq!(r.state(t(5)), WorkerState::Running);
        let gone = WorkerRecord::after_exit(&r, &beat(7, false), t(6)).expect("exit");
        assert_eq!((gone.state(t(1000)), gone.build), (WorkerState::Exited, None));
    }
}
