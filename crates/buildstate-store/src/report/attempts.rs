//! Attempt statistics: the completed and failed attempts (and the recoveries from
//! failures) of a set of builds, summed per platform × OS × image type × milestone ×
//! duration bucket. Durations, cost, flaky milestones and ETAs are read from these
//! rows — which SQL backends keep up to date in the transaction of every transition
//! (the `attempt_stats` table), so that a report over two million attempts reads a few
//! thousand rows — and which any backend can also compute from the history itself
//! ([`aggregate`]), as the JSON-file store does and as every report filtered by
//! something the table does not hold (time, pipeline, status) does.
//!
//! Durations are summed exactly; for percentiles each completed attempt is counted in a
//! bucket about 1 % wide ([`bucket`]) over all builds ([`DurationRow`], what `durations`
//! reads), and in one about 10 % wide ([`coarse`]) per platform × OS × image type (what
//! ETAs read: per cell, fine buckets would be nearly one row per attempt). A percentile
//! is its bucket's lower bound: at most 1 % (ETAs: 10 %) under the exact value, the same
//! on every backend.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use buildstate_core::{Build, BuildId, EventKind, HistoryEvent, Name, StateCode};

/// What a statistics row counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatKind {
    /// Completed attempts, by duration.
    Completed,
    /// Failed attempts, by duration.
    Failed,
    /// Failures followed by a success at the same milestone: `total_ms` sums the time
    /// from each failure to that success (bucket 0).
    Recovered,
}

impl StatKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            StatKind::Completed => "completed",
            StatKind::Failed => "failed",
            StatKind::Recovered => "recovered",
        }
    }

    pub fn parse(s: &str) -> Option<StatKind> {
        [StatKind::Completed, StatKind::Failed, StatKind::Recovered].into_iter().find(|k| k.as_str() == s)
    }
}

/// One row of attempt statistics. Deltas written by the engine may be negative (a build
/// deleted or replaced); rows read back are sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatRow {
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
    pub state: StateCode,
    pub kind: StatKind,
    pub bucket: u32,
    pub attempts: i64,
    pub total_ms: i64,
    /// Attempts numbered above 1 (a retry of the milestone).
    pub retries: i64,
}

/// The lower bounds of the duration buckets: every millisecond below 100, then each
/// bound 1 % (rounded down) above the one before, up to beyond a year.
fn bounds() -> &'static [u64] {
    static BOUNDS: OnceLock<Vec<u64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut b: Vec<u64> = (0..100).collect();
        let mut next = 100u64;
        while next < 1 << 36 {
            b.push(next);
            next += next / 100;
        }
        b
    })
}

/// The bucket of a duration in milliseconds.
pub fn bucket(ms: u64) -> u32 {
    let b = bounds();
    (b.partition_point(|&lower| lower <= ms).saturating_sub(1)) as u32
}

/// The lower bound of a bucket: what percentiles report.
pub fn bucket_floor(bucket: u32) -> u64 {
    let b = bounds();
    b[(bucket as usize).min(b.len() - 1)]
}

/// Attempt statistics summed over buckets (and over cells, or all but the platform):
/// what cost and flakiness read ([`Tx::attempt_totals`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatTotal {
    /// `None` when summed over every platform.
    pub platform: Option<Name>,
    pub state: StateCode,
    pub kind: StatKind,
    pub attempts: i64,
    pub total_ms: i64,
    pub retries: i64,
}

/// Sums statistics rows per (platform,) milestone and kind.
pub fn totals(rows: impl IntoIterator<Item = StatRow>, by_platform: bool) -> Vec<StatTotal> {
    let mut sums: BTreeMap<(Option<Name>, StateCode, StatKind), StatTotal> = BTreeMap::new();
    for r in rows {
        let platform = by_platform.then(|| r.platform.clone());
        let t = sums.entry((platform.clone(), r.state, r.kind)).or_insert(StatTotal {
            platform,
            state: r.state,
            kind: r.kind,
            attempts: 0,
            total_ms: 0,
            retries: 0,
        });
        t.attempts += r.attempts;
        t.total_ms += r.total_ms;
        t.retries += r.retries;
    }
    sums.into_values().filter(|t| t.attempts != 0).collect()
}

/// How many fine buckets make one coarse bucket (about 10 % wide).
pub const COARSE: u32 = 10;

/// The coarse bucket of a fine one.
pub fn coarse(fine: u32) -> u32 {
    fine / COARSE
}

/// The lower bound of a coarse bucket.
pub fn coarse_floor(coarse: u32) -> u64 {
    bucket_floor(coarse.saturating_mul(COARSE))
}

/// Completed attempts over all builds, per milestone and fine duration bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationRow {
    pub state: StateCode,
    pub bucket: u32,
    pub attempts: i64,
    pub total_ms: i64,
}

/// The completed attempts among `events`, as duration rows (each with `attempts` 1).
pub fn durations_of(events: &[HistoryEvent]) -> Vec<DurationRow> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Completed)
        .map(|e| {
            let d = e.duration_ms.unwrap_or(0);
            DurationRow { state: e.state, bucket: bucket(d), attempts: 1, total_ms: d as i64 }
        })
        .collect()
}

/// Sums duration rows with the same milestone and bucket, dropping empty sums.
pub fn sum_durations(rows: impl IntoIterator<Item = DurationRow>) -> Vec<DurationRow> {
    let mut sums: BTreeMap<(StateCode, u32), DurationRow> = BTreeMap::new();
    for r in rows {
        match sums.get_mut(&(r.state, r.bucket)) {
            Some(s) => {
                s.attempts += r.attempts;
                s.total_ms += r.total_ms;
            }
            None => {
                sums.insert((r.state, r.bucket), r);
            }
        }
    }
    sums.into_values().filter(|r| r.attempts != 0).collect()
}

/// The statistics rows of one build's history, each with `attempts` 1: its completed
/// and failed attempts, and each failure that a later success at the same milestone
/// recovered from.
pub fn contributions(b: &Build, history: &[HistoryEvent]) -> Vec<StatRow> {
    contributions_in(&b.platform, &b.os, &b.image_type, history)
}

/// [`contributions`] of a history whose build's platform, OS and image type are given.
pub fn contributions_in(
    platform: &Name,
    os: &Name,
    image_type: &Name,
    history: &[HistoryEvent],
) -> Vec<StatRow> {
    let mut rows = Vec::new();
    let row = |state, kind, bucket, total_ms: u64, retry: bool| StatRow {
        platform: platform.clone(),
        os: os.clone(),
        image_type: image_type.clone(),
        state,
        kind,
        bucket,
        attempts: 1,
        total_ms: total_ms as i64,
        retries: i64::from(retry),
    };
    // Failures at each milestone not yet followed by a success there.
    let mut open: BTreeMap<StateCode, Vec<jiff::Timestamp>> = BTreeMap::new();
    for e in history {
        let (kind, d) = match e.kind {
            EventKind::Completed => (StatKind::Completed, e.duration_ms.unwrap_or(0)),
            EventKind::Failed => (StatKind::Failed, e.duration_ms.unwrap_or(0)),
            _ => continue,
        };
        // Per cell, completed attempts by coarse bucket; failures only counted and summed.
        let b = if kind == StatKind::Completed { coarse(bucket(d)) } else { 0 };
        rows.push(row(e.state, kind, b, d, e.attempt > 1));
        match kind {
            StatKind::Failed => open.entry(e.state).or_default().push(e.at),
            _ => {
                for failed_at in open.remove(&e.state).unwrap_or_default() {
                    let took = (e.at.as_millisecond() - failed_at.as_millisecond()).max(0) as u64;
                    rows.push(row(e.state, StatKind::Recovered, 0, took, false));
                }
            }
        }
    }
    rows
}

/// The contributions of the events after the first `before` of `history` (those one
/// transition appended): what the statistics gain from it.
pub fn contributions_of_tail(b: &Build, history: &[HistoryEvent], before: usize) -> Vec<StatRow> {
    let all = contributions(b, history);
    let earlier = contributions(b, &history[..before.min(history.len())]);
    // Contributions only ever extend: those of a prefix are a prefix of them.
    all[earlier.len().min(all.len())..].to_vec()
}

/// Sums rows with the same key, dropping those that sum to nothing.
pub fn sum(rows: impl IntoIterator<Item = StatRow>) -> Vec<StatRow> {
    type Key = (Name, Name, Name, StateCode, StatKind, u32);
    let mut sums: BTreeMap<Key, StatRow> = BTreeMap::new();
    for r in rows {
        let key = (r.platform.clone(), r.os.clone(), r.image_type.clone(), r.state, r.kind, r.bucket);
        match sums.get_mut(&key) {
            Some(s) => {
                s.attempts += r.attempts;
                s.total_ms += r.total_ms;
                s.retries += r.retries;
            }
            None => {
                sums.insert(key, r);
            }
        }
    }
    sums.into_values().filter(|r| r.attempts != 0).collect()
}

/// The statistics of `builds` from their histories: what the `attempt_stats` table
/// holds for them. `events` are (build, event) pairs, each build's in order.
pub fn aggregate(builds: &[Build], events: Vec<(BuildId, HistoryEvent)>) -> Vec<StatRow> {
    let by_id: std::collections::HashMap<BuildId, &Build> = builds.iter().map(|b| (b.id, b)).collect();
    let mut histories: BTreeMap<BuildId, Vec<HistoryEvent>> = BTreeMap::new();
    for (id, e) in events {
        histories.entry(id).or_default().push(e);
    }
    let mut rows = Vec::new();
    for (id, mut h) in histories {
        if let Some(b) = by_id.get(&id) {
            h.sort_by_key(|e| e.seq);
            rows.extend(contributions(b, &h));
        }
    }
    sum(rows)
}

/// One attempt of an existing history, as the migration that creates the statistics
/// table reads them (`sql::text::SELECT_STAT_SOURCES`).
#[derive(Clone, Debug)]
pub struct StatSource {
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
    /// The build, as its id's text: sources come build by build, in history order.
    pub build: String,
    pub kind: EventKind,
    pub state: StateCode,
    pub attempt: u32,
    pub at: jiff::Timestamp,
    pub duration_ms: Option<u64>,
}

/// What existing histories hold, for the tables that start from them.
#[derive(Debug, Default)]
pub struct Backfill {
    pub stats: Vec<StatRow>,
    pub durations: Vec<DurationRow>,
    /// Per resumed build (its id's text): resumes and the time they saved.
    pub savings: Vec<(String, u32, u64)>,
}

/// The statistics, duration histogram and savings of existing histories.
pub fn from_sources(sources: impl IntoIterator<Item = StatSource>) -> Backfill {
    let mut rows = Vec::new();
    let mut durations = Vec::new();
    let mut savings = Vec::new();
    let mut current: Option<(StatSource, Vec<HistoryEvent>)> = None;
    let mut flush = |c: Option<(StatSource, Vec<HistoryEvent>)>, rows: &mut Vec<StatRow>| {
        if let Some((s, h)) = c {
            rows.extend(contributions_in(&s.platform, &s.os, &s.image_type, &h));
            durations.extend(durations_of(&h));
            let (resumes, saved) = super::resume_savings(&h);
            if resumes > 0 {
                savings.push((s.build.clone(), resumes, saved));
            }
        }
    };
    for s in sources {
        let event = HistoryEvent {
            seq: 0,
            at: s.at,
            kind: s.kind,
            state: s.state,
            attempt: s.attempt,
            actor: String::new(),
            started_at: None,
            duration_ms: s.duration_ms,
            exit_code: None,
            message: None,
            log: None,
            from_state: None,
            forced: false,
        };
        match &mut current {
            Some((first, h)) if first.build == s.build => h.push(event),
            _ => {
                flush(current.take(), &mut rows);
                current = Some((s, vec![event]));
            }
        }
    }
    flush(current, &mut rows);
    Backfill { stats: sum(rows), durations: sum_durations(durations), savings }
}

/// What resuming saved one build ([`Tx::resume_savings`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saving {
    pub number: buildstate_core::BuildNumber,
    pub platform: Name,
    pub os: Name,
    pub image_type: Name,
    pub resumes: u32,
    pub saved_ms: u64,
}

/// The events [`super::resume_savings`] reads.
pub const SAVING_EVENTS: &[EventKind] =
    &[EventKind::Started, EventKind::Completed, EventKind::Failed, EventKind::Rewound];

/// The events [`contributions`] reads.
pub const STAT_EVENTS: &[EventKind] = &[EventKind::Completed, EventKind::Failed];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_about_one_percent_wide() {
        assert_eq!(bucket_floor(bucket(0)), 0);
        assert_eq!(bucket_floor(bucket(99)), 99);
        assert_eq!(bucket_floor(bucket(100)), 100);
        for ms in [150u64, 1_234, 61_234, 3_600_000, 86_400_000, 7 * 86_400_000] {
            let floor = bucket_floor(bucket(ms));
            assert!(floor <= ms && ms - floor <= ms / 100 + 1, "{ms} → {floor}");
            assert!(bucket(floor) == bucket(ms));
        }
        assert!(bounds().len() < 3_000);
    }
}
