//! Reports about time (and the money it costs): milestone durations, build durations per
//! platform, running builds and their expected finish, what resuming saved, cost per
//! phase, and flaky milestones. Attempts are the `completed` and `failed` events of the
//! history, each with its duration.

use std::collections::{BTreeMap, HashMap};

use buildstate_core::{Build, BuildId, BuildStatus, EventKind, HistoryEvent, Name, StateCode};
use jiff::{SignedDuration, Timestamp};

use super::StatKind;
use super::counts::Names;
use super::lists::{BUILD_COLUMNS, build_cells};
use super::stats::{self, Summary};
use super::table::{Cell, CellKind::*, Report};
use super::{ReportFilter, ReportName, ReportRequest};
use crate::{StoreResult, Tx};

fn ms_between(a: Timestamp, b: Timestamp) -> u64 {
    u64::try_from(b.as_millisecond() - a.as_millisecond()).unwrap_or(0)
}

fn summary_cells(s: Option<Summary>) -> Vec<Cell> {
    match s {
        Some(s) => [s.count, s.mean, s.min, s.p50, s.p90, s.max].into_iter().map(Cell::count).collect(),
        None => vec![Cell::count(0), Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null],
    }
}

const SUMMARY_COLUMNS: [(&str, super::table::CellKind); 6] = [
    ("count", Count),
    ("mean_ms", Duration),
    ("min_ms", Duration),
    ("p50_ms", Duration),
    ("p90_ms", Duration),
    ("max_ms", Duration),
];

/// A duration histogram with the exact sum.
#[derive(Default)]
struct Histogram {
    buckets: BTreeMap<u32, u64>,
    sum_ms: u128,
}

impl Histogram {
    fn add(&mut self, bucket: u32, attempts: i64, total_ms: i64) {
        *self.buckets.entry(bucket).or_default() += attempts.max(0) as u64;
        self.sum_ms += total_ms.max(0) as u128;
    }

    fn summary(&self, floor: fn(u32) -> u64) -> Option<Summary> {
        Summary::of_histogram(&self.buckets, self.sum_ms, floor)
    }
}

/// Per milestone, over completed attempts.
pub(super) async fn durations(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut by_state: BTreeMap<u8, Histogram> = BTreeMap::new();
    for r in tx.duration_histogram(&req.filter).await? {
        by_state.entry(r.state.get()).or_default().add(r.bucket, r.attempts, r.total_ms);
    }
    let mut columns = vec![("state", Count), ("state_name", Text)];
    columns.extend(SUMMARY_COLUMNS);
    let mut r = Report::new(ReportName::Durations, now, &columns);
    let mut names = Names::new();
    for (state, h) in by_state {
        let mut row = vec![Cell::count(state), Cell::Text(names.of(tx, state).await?)];
        row.extend(summary_cells(h.summary(super::bucket_floor)));
        r.push(row);
    }
    Ok(r)
}

/// Per platform, over delivered builds: first start to delivery.
pub(super) async fn platform_durations(
    tx: &mut dyn Tx,
    req: &ReportRequest,
    now: Timestamp,
) -> StoreResult<Report> {
    let mut by_platform: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    if let Some(filter) = req.filter.narrowed(&[BuildStatus::Completed]) {
        for (platform, took) in tx.delivery_times(&filter).await? {
            by_platform.entry(platform.to_string()).or_default().push(took);
        }
    }
    let mut columns = vec![("platform", Text)];
    columns.extend(SUMMARY_COLUMNS);
    let mut r = Report::new(ReportName::PlatformDurations, now, &columns);
    let mut rows: Vec<(String, Summary)> =
        by_platform.into_iter().filter_map(|(p, v)| Summary::of(v).map(|s| (p, s))).collect();
    rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    for (p, s) in rows {
        let mut row = vec![Cell::Text(p)];
        row.extend(summary_cells(Some(s)));
        r.push(row);
    }
    Ok(r)
}

// ── expected finish ─────────────────────────────────────────────────────────────────

/// A platform × OS × image type cell.
pub type CellKey = (Name, Name, Name);

/// The coarse buckets of the p50 and p90 of completed attempts per milestone, for some
/// platform × OS × image type cells and over all builds ([`Tx::eta_percentiles`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtaPercentiles {
    pub cell: HashMap<(Name, Name, Name, u8), (u32, u32)>,
    pub all: HashMap<u8, (u32, u32)>,
}

/// [`Tx::eta_percentiles`]'s meaning, and its default: from the statistics rows, the
/// cells among `cells` and all builds.
pub fn eta_percentiles_of(rows: Vec<super::StatRow>, cells: &[CellKey]) -> EtaPercentiles {
    let wanted: std::collections::HashSet<&CellKey> = cells.iter().collect();
    let mut cell = Vec::new();
    let mut all = Vec::new();
    for r in rows.into_iter().filter(|r| r.kind == StatKind::Completed && r.attempts > 0) {
        let n = r.attempts as u64;
        all.push((r.state.get(), r.bucket, n));
        let key = (r.platform, r.os, r.image_type);
        if wanted.contains(&key) {
            cell.push(((key.0, key.1, key.2, r.state.get()), r.bucket, n));
        }
    }
    EtaPercentiles { cell: percentile_buckets(cell), all: percentile_buckets(all) }
}

/// The buckets holding the nearest-rank p50 and p90 of each key's histogram, from
/// `(key, bucket, count)` rows in any order.
pub fn percentile_buckets<K: std::hash::Hash + Eq>(
    rows: impl IntoIterator<Item = (K, u32, u64)>,
) -> HashMap<K, (u32, u32)> {
    let mut histograms: HashMap<K, BTreeMap<u32, u64>> = HashMap::new();
    for (key, bucket, n) in rows {
        *histograms.entry(key).or_default().entry(bucket).or_default() += n;
    }
    histograms.into_iter().map(|(k, h)| (k, bucket_ranks(&h))).collect()
}

/// The buckets holding the nearest-rank p50 and p90 of a histogram.
fn bucket_ranks(h: &BTreeMap<u32, u64>) -> (u32, u32) {
    let total: u64 = h.values().sum();
    let at = |p: u64| {
        let mut seen = 0;
        for (&b, &n) in h {
            seen += n;
            // seen ≥ ⌈total·p/100⌉, in integers.
            if seen * 100 >= total * p {
                return b;
            }
        }
        0
    };
    (at(50), at(90))
}

/// p50 and p90 of completed attempts per milestone, for one platform × OS × image type
/// cell and over all builds.
#[derive(Default)]
struct History {
    cell: HashMap<(Name, Name, Name, u8), (u64, u64)>,
    all: HashMap<u8, (u64, u64)>,
}

impl History {
    /// From the statistics of every completed attempt in the store, for the cells of
    /// `builds`: an ETA learns from all builds, whatever the filter selects to show.
    async fn load(tx: &mut dyn Tx, builds: &[Build]) -> StoreResult<History> {
        if builds.is_empty() {
            return Ok(History::default());
        }
        let mut cells: Vec<CellKey> =
            builds.iter().map(|b| (b.platform.clone(), b.os.clone(), b.image_type.clone())).collect();
        cells.sort();
        cells.dedup();
        let p = tx.eta_percentiles(&cells).await?;
        let floors = |(a, b): (u32, u32)| (super::coarse_floor(a), super::coarse_floor(b));
        Ok(History {
            cell: p.cell.into_iter().map(|(k, q)| (k, floors(q))).collect(),
            all: p.all.into_iter().map(|(k, q)| (k, floors(q))).collect(),
        })
    }

    fn estimate(&self, b: &Build, now: Timestamp) -> Estimate {
        let elapsed = b.attempt_started_at.map_or(0, |t| ms_between(t, now));
        let (mut p50, mut p90, mut from_cell, mut from_all, mut unknown) = (0u64, 0u64, 0u32, 0u32, 0u32);
        for code in b.catalog.codes().filter(|c| *c >= b.state) {
            let key = (b.platform.clone(), b.os.clone(), b.image_type.clone(), code.get());
            let (m50, m90) = if let Some(q) = self.cell.get(&key) {
                from_cell += 1;
                *q
            } else if let Some(q) = self.all.get(&code.get()) {
                from_all += 1;
                *q
            } else {
                unknown += 1;
                (0, 0)
            };
            // The milestone under way has already run for `elapsed`.
            let spent = if code == b.state { elapsed } else { 0 };
            p50 += m50.saturating_sub(spent);
            p90 += m90.saturating_sub(spent);
        }
        let basis = match (from_cell, from_all) {
            (0, 0) => "none",
            (_, 0) => "cell",
            (0, _) => "all",
            _ => "mixed",
        };
        Estimate { p50, p90, basis, unknown }
    }
}

struct Estimate {
    p50: u64,
    p90: u64,
    /// Whose history: `cell` (same platform × OS × image type), `all`, `mixed`, `none`.
    basis: &'static str,
    /// Milestones ahead that no build has completed yet.
    unknown: u32,
}

impl Estimate {
    fn finish(&self, now: Timestamp, ms: u64) -> Option<Timestamp> {
        if self.basis == "none" {
            return None;
        }
        now.checked_add(SignedDuration::from_millis(i64::try_from(ms).ok()?)).ok()
    }
}

async fn running_builds(tx: &mut dyn Tx, req: &ReportRequest) -> StoreResult<Vec<Build>> {
    let Some(filter) = req.filter.narrowed(&[BuildStatus::Running]) else { return Ok(Vec::new()) };
    let mut builds = tx.report_builds(&filter).await?;
    builds.sort_by_key(|b| (b.started_at, b.id));
    Ok(builds)
}

pub(super) async fn eta(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let builds = running_builds(tx, req).await?;
    let history = History::load(tx, &builds).await?;
    let mut columns = BUILD_COLUMNS.to_vec();
    columns.extend([
        ("elapsed_ms", Duration),
        ("remaining_p50_ms", Duration),
        ("remaining_p90_ms", Duration),
        ("finish_p50", Time),
        ("finish_p90", Time),
        ("basis", Text),
        ("milestones_without_history", Count),
    ]);
    let mut r = Report::new(ReportName::Eta, now, &columns);
    for b in &builds {
        let e = history.estimate(b, now);
        let mut row = build_cells(b);
        let known = |ms: u64| if e.basis == "none" { Cell::Null } else { Cell::count(ms) };
        row.extend([
            Cell::opt_count(b.duration_ms(now)),
            known(e.p50),
            known(e.p90),
            Cell::opt_time(e.finish(now, e.p50)),
            Cell::opt_time(e.finish(now, e.p90)),
            Cell::text(e.basis),
            Cell::count(e.unknown),
        ]);
        r.push(row);
    }
    Ok(r)
}

pub(super) async fn running(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let builds = running_builds(tx, req).await?;
    let history = History::load(tx, &builds).await?;
    let leases: HashMap<BuildId, buildstate_core::Lease> =
        tx.held_leases().await?.into_iter().map(|(_, l)| (l.build_id, l)).collect();
    let mut columns = BUILD_COLUMNS.to_vec();
    columns.extend([
        ("attempt", Count),
        ("elapsed_ms", Duration),
        ("attempt_elapsed_ms", Duration),
        ("runner", Text),
        ("lease_expires_at", Time),
        ("eta", Time),
    ]);
    let mut r = Report::new(ReportName::Running, now, &columns);
    for b in &builds {
        let lease = leases.get(&b.id);
        let e = history.estimate(b, now);
        let mut row = build_cells(b);
        row.extend([
            Cell::count(b.attempt),
            Cell::opt_count(b.duration_ms(now)),
            Cell::opt_count(b.attempt_started_at.map(|t| ms_between(t, now))),
            Cell::opt_text(lease.map(|l| l.holder())),
            Cell::opt_time(lease.map(|l| l.expires_at)),
            Cell::opt_time(e.finish(now, e.p50)),
        ]);
        r.push(row);
    }
    Ok(r)
}

// ── what resuming saved ─────────────────────────────────────────────────────────────

/// What resuming saved one build: each attempt made after a failure (a resume) did not
/// run again the milestones completed before its own, whose latest recorded durations
/// are what starting over would have cost. A rewind to a code forgets what was
/// completed from there on (it is run again).
pub fn resume_savings(history: &[HistoryEvent]) -> (u32, u64) {
    let mut done: BTreeMap<StateCode, u64> = BTreeMap::new();
    let (mut resumes, mut saved, mut after_failure) = (0u32, 0u64, false);
    let mut resume = |state: StateCode, done: &BTreeMap<StateCode, u64>, after_failure: &mut bool| {
        if std::mem::take(after_failure) {
            resumes += 1;
            saved += done.range(..state).map(|(_, d)| d).sum::<u64>();
        }
    };
    for e in history {
        match e.kind {
            EventKind::Started => resume(e.state, &done, &mut after_failure),
            EventKind::Completed => {
                resume(e.state, &done, &mut after_failure);
                done.insert(e.state, e.duration_ms.unwrap_or(0));
            }
            EventKind::Failed => {
                resume(e.state, &done, &mut after_failure);
                after_failure = true;
            }
            EventKind::Rewound => {
                done.retain(|s, _| *s < e.state);
            }
            _ => {}
        }
    }
    (resumes, saved)
}

/// What the events after the first `before` of `history` add to its savings.
pub fn savings_of_tail(history: &[HistoryEvent], before: usize) -> (u32, u64) {
    let (all_resumes, all_saved) = resume_savings(history);
    let (resumes, saved) = resume_savings(&history[..before.min(history.len())]);
    (all_resumes - resumes, all_saved - saved)
}

/// The savings of the builds matching `filter` that have any, from their histories:
/// [`Tx::resume_savings`]'s meaning, and its default.
pub fn savings_in_memory(builds: &[Build], events: Vec<(BuildId, HistoryEvent)>) -> Vec<super::Saving> {
    let by_id: HashMap<BuildId, &Build> = builds.iter().map(|b| (b.id, b)).collect();
    let mut histories: BTreeMap<BuildId, Vec<HistoryEvent>> = BTreeMap::new();
    for (id, e) in events {
        histories.entry(id).or_default().push(e);
    }
    let mut out = Vec::new();
    for (id, mut events) in histories {
        let Some(b) = by_id.get(&id) else { continue };
        events.sort_by_key(|e| e.seq);
        let (resumes, saved_ms) = resume_savings(&events);
        if resumes > 0 {
            out.push(super::Saving {
                number: b.number.clone(),
                platform: b.platform.clone(),
                os: b.os.clone(),
                image_type: b.image_type.clone(),
                resumes,
                saved_ms,
            });
        }
    }
    out
}

pub(super) async fn time_saved(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    // Only a build that failed was ever resumed.
    let failed = ReportFilter { more_failures_than: Some(0), ..req.filter.clone() };
    let mut rows: Vec<super::Saving> = tx.resume_savings(&failed).await?;
    rows.retain(|s| s.resumes > 0);
    rows.sort_by(|a, b| b.saved_ms.cmp(&a.saved_ms).then_with(|| a.number.as_str().cmp(b.number.as_str())));
    let mut r = Report::new(
        ReportName::TimeSaved,
        now,
        &[
            ("build", Text),
            ("platform", Text),
            ("os", Text),
            ("image_type", Text),
            ("resumes", Count),
            ("saved_ms", Duration),
            ("saved_cost", Money),
        ],
    );
    let (builds, mut total_ms, mut total_cost, mut priced) = (rows.len(), 0u64, 0f64, true);
    let mut unpriced = std::collections::BTreeSet::new();
    r.rows.reserve(builds);
    // Tens of thousands of rows at scale: each saving's strings move into its row.
    for s in rows {
        let cost = req.rate(&s.platform).map(|rate| stats::cost(s.saved_ms, rate));
        total_ms += s.saved_ms;
        match cost {
            Some(c) => total_cost += c,
            None => {
                priced = false;
                if !unpriced.contains(s.platform.as_str()) {
                    unpriced.insert(s.platform.to_string());
                }
            }
        }
        r.push(vec![
            Cell::Text(s.number.into()),
            Cell::Text(s.platform.into()),
            Cell::Text(s.os.into()),
            Cell::Text(s.image_type.into()),
            Cell::count(s.resumes),
            Cell::count(s.saved_ms),
            Cell::money(cost),
        ]);
    }
    r.sum("builds", Cell::count(builds));
    r.sum("saved_ms", Cell::count(total_ms));
    r.sum("saved_cost", if priced { Cell::money(Some(total_cost)) } else { Cell::Null });
    r.notes.extend(no_rate_notes(unpriced));
    Ok(r)
}

fn no_rate_notes(platforms: std::collections::BTreeSet<String>) -> Vec<String> {
    platforms
        .into_iter()
        .map(|p| format!("no hourly rate for platform {p}: add `{p} = RATE` under [cost] in the config file"))
        .collect()
}

// ── cost ────────────────────────────────────────────────────────────────────────────

/// The phase a milestone belongs to, by code: build (Packer, below 15), configure
/// (15–65), test (70–90), publish (95 and 100). Codes inserted between fall in with
/// their neighbours.
pub fn band(state: StateCode) -> &'static str {
    match state.get() {
        0..15 => "build",
        15..70 => "configure",
        70..95 => "test",
        _ => "publish",
    }
}

pub(super) async fn cost(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    // (platform, band order, band) → attempts, ms, failed attempts, failed ms
    let mut groups: BTreeMap<(String, u8, &'static str), [u64; 4]> = BTreeMap::new();
    for s in tx.attempt_totals(&req.filter, true).await? {
        let Some(platform) = &s.platform else { continue };
        if s.kind == StatKind::Recovered {
            continue;
        }
        let b = band(s.state);
        let order = ["build", "configure", "test", "publish"].iter().position(|x| *x == b).unwrap_or(0) as u8;
        let g = groups.entry((platform.to_string(), order, b)).or_default();
        let (n, d) = (s.attempts.max(0) as u64, s.total_ms.max(0) as u64);
        g[0] += n;
        g[1] += d;
        if s.kind == StatKind::Failed {
            g[2] += n;
            g[3] += d;
        }
    }
    let mut r = Report::new(
        ReportName::Cost,
        now,
        &[
            ("platform", Text),
            ("band", Text),
            ("attempts", Count),
            ("duration_ms", Duration),
            ("rate", Money),
            ("cost", Money),
            ("failed_attempts", Count),
            ("failed_duration_ms", Duration),
            ("failed_cost", Money),
        ],
    );
    // Totals over the platforms that have a rate (the others are named in a note), and
    // per band.
    let (mut total, mut failed_total) = (0f64, 0f64);
    let mut by_band: BTreeMap<u8, (&'static str, f64)> = BTreeMap::new();
    let mut unpriced = std::collections::BTreeSet::new();
    for ((platform, order, band), [n, ms, fnum, fms]) in groups {
        let rate = req.rates.get(&platform).copied();
        let cost = rate.map(|r| stats::cost(ms, r));
        let failed = rate.map(|r| stats::cost(fms, r));
        match (cost, failed) {
            (Some(c), Some(f)) => {
                total += c;
                failed_total += f;
                by_band.entry(order).or_insert((band, 0.0)).1 += c;
            }
            _ => {
                unpriced.insert(platform.clone());
            }
        }
        r.push(vec![
            Cell::Text(platform),
            Cell::text(band),
            Cell::count(n),
            Cell::count(ms),
            Cell::money(rate),
            Cell::money(cost),
            Cell::count(fnum),
            Cell::count(fms),
            Cell::money(failed),
        ]);
    }
    r.sum("cost", Cell::money(Some(total)));
    r.sum("failed_cost", Cell::money(Some(failed_total)));
    for (band, cost) in by_band.into_values() {
        r.sum(band_key(band), Cell::money(Some(cost)));
    }
    if !unpriced.is_empty() {
        r.notes.push(format!(
            "the totals leave out {}, which {} no rate",
            unpriced.iter().cloned().collect::<Vec<_>>().join(", "),
            if unpriced.len() == 1 { "has" } else { "have" }
        ));
    }
    r.notes.extend(no_rate_notes(unpriced));
    Ok(r)
}

fn band_key(band: &str) -> &'static str {
    match band {
        "build" => "cost_build",
        "configure" => "cost_configure",
        "test" => "cost_test",
        _ => "cost_publish",
    }
}

// ── flaky milestones ───────────────────────────────────────────────────────────────

/// A failure message with its numbers taken out, so that "timeout after 31s on
/// 10.0.3.7" and "timeout after 29s on 10.0.3.9" count as one pattern.
pub fn pattern(message: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in message.trim().chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
        if out.len() >= 120 {
            break;
        }
    }
    out
}

#[derive(Default)]
struct Flakiness {
    attempts: u64,
    retries: u64,
    transient: u64,
    patterns: BTreeMap<String, u64>,
    recovered: u64,
    recovery_ms: u128,
}

pub(super) async fn flaky(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut by_state: BTreeMap<u8, Flakiness> = BTreeMap::new();
    for s in tx.attempt_totals(&req.filter, false).await? {
        let f = by_state.entry(s.state.get()).or_default();
        let n = s.attempts.max(0) as u64;
        match s.kind {
            StatKind::Recovered => {
                f.recovered += n;
                f.recovery_ms += s.total_ms.max(0) as u128;
            }
            _ => {
                f.attempts += n;
                f.retries += s.retries.max(0) as u64;
            }
        }
    }
    for (state, message, n) in tx.transient_messages(&req.filter).await? {
        let s = by_state.entry(state.get()).or_default();
        s.transient += n;
        *s.patterns.entry(pattern(&message)).or_default() += n;
    }
    let mut rows: Vec<(u8, Flakiness)> = by_state.into_iter().filter(|(_, f)| f.attempts > 0).collect();
    rows.sort_by(|a, b| {
        let rate = |f: &Flakiness| u128::from(f.retries) * 1_000_000 / u128::from(f.attempts.max(1));
        rate(&b.1)
            .cmp(&rate(&a.1))
            .then_with(|| b.1.transient.cmp(&a.1.transient))
            .then_with(|| a.0.cmp(&b.0))
    });
    let mut r = Report::new(
        ReportName::Flaky,
        now,
        &[
            ("state", Count),
            ("state_name", Text),
            ("attempts", Count),
            ("retries", Count),
            ("retry_pct", Percent),
            ("transient_failures", Count),
            ("common_pattern", Text),
            ("pattern_count", Count),
            ("mean_recovery_ms", Duration),
        ],
    );
    let mut names = Names::new();
    for (state, f) in rows {
        // The most frequent pattern; the first in text order on a tie.
        let common = f.patterns.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
        let recovery = (f.recovered > 0).then(|| stats::mean(f.recovery_ms, f.recovered));
        r.push(vec![
            Cell::count(state),
            Cell::Text(names.of(tx, state).await?),
            Cell::count(f.attempts),
            Cell::count(f.retries),
            Cell::percent(f.retries, f.attempts),
            Cell::count(f.transient),
            Cell::opt_text(common.map(|(p, _)| p.clone())),
            Cell::opt_count(common.map(|(_, n)| *n)),
            Cell::opt_count(recovery),
        ]);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_drop_numbers() {
        assert_eq!(pattern("timeout after 31s on 10.0.3.7"), "timeout after #s on #.#.#.#");
        assert_eq!(pattern("  429 Too Many Requests "), "# Too Many Requests");
    }

    #[test]
    fn bands_by_code() {
        let code = |n| StateCode::new(n).expect("code");
        assert_eq!(band(code(0)), "build");
        assert_eq!(band(code(12)), "build");
        assert_eq!(band(code(15)), "configure");
        assert_eq!(band(code(70)), "test");
        assert_eq!(band(code(95)), "publish");
        assert_eq!(band(code(100)), "publish");
    }
}
