//! Reports that count builds: overview, per platform / OS / image type, per milestone,
//! the matrix of latest builds, and the success rate by month.

use std::collections::BTreeMap;

use buildstate_core::{Build, BuildStatus, StateCatalog, StateCode};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan, tz::TimeZone};

use super::table::{Cell, CellKind::*, Report};
use super::{BuildCount, Group, ReportName, ReportRequest};
use crate::{StoreResult, Tx};

/// Counts per status, and how many need a person.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    total: u64,
    by_status: [u64; 5],
    needs_person: u64,
}

impl Tally {
    fn add(&mut self, c: &BuildCount) {
        self.total += c.builds;
        self.by_status[status_index(c.status)] += c.builds;
        if c.needs_intervention {
            self.needs_person += c.builds;
        }
    }

    fn get(&self, s: BuildStatus) -> u64 {
        self.by_status[status_index(s)]
    }

    /// total, pending, running, completed, failed, cancelled, needs_person.
    fn cells(&self) -> Vec<Cell> {
        let mut cells = vec![Cell::count(self.total)];
        cells.extend(BuildStatus::ALL.iter().map(|&s| Cell::count(self.get(s))));
        cells.push(Cell::count(self.needs_person));
        cells
    }
}

fn status_index(s: BuildStatus) -> usize {
    BuildStatus::ALL.iter().position(|&x| x == s).unwrap_or(0)
}

const TALLY_COLUMNS: [(&str, super::table::CellKind); 7] = [
    ("total", Count),
    ("pending", Count),
    ("running", Count),
    ("completed", Count),
    ("failed", Count),
    ("cancelled", Count),
    ("needs_person", Count),
];

pub(super) async fn overview(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut tally = Tally::default();
    for c in tx.count_builds(&req.filter, Group::All).await? {
        tally.add(&c);
    }
    let mut r = Report::new(ReportName::Overview, now, &TALLY_COLUMNS);
    r.push(tally.cells());
    Ok(r)
}

/// `platforms`, `os`, `images`: one row per value of `group`, busiest first.
pub(super) async fn per(
    tx: &mut dyn Tx,
    req: &ReportRequest,
    now: Timestamp,
    group: Group,
) -> StoreResult<Report> {
    let (name, key) = match group {
        Group::Platform => (ReportName::Platforms, "platform"),
        Group::Os => (ReportName::Os, "os"),
        _ => (ReportName::Images, "image_type"),
    };
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for c in tx.count_builds(&req.filter, group).await? {
        tallies.entry(c.key.clone()).or_default().add(&c);
    }
    let mut columns = vec![(key, Text)];
    columns.extend(TALLY_COLUMNS);
    let mut r = Report::new(name, now, &columns);
    let mut rows: Vec<(String, Tally)> = tallies.into_iter().collect();
    rows.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
    for (k, t) in rows {
        let mut row = vec![Cell::Text(k)];
        row.extend(t.cells());
        r.push(row);
    }
    Ok(r)
}

pub(super) async fn states(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut tallies: BTreeMap<u8, Tally> = BTreeMap::new();
    for c in tx.count_builds(&req.filter, Group::State).await? {
        let code: u8 = c.key.parse().unwrap_or(0);
        tallies.entry(code).or_default().add(&c);
    }
    let mut r = Report::new(
        ReportName::States,
        now,
        &[
            ("state", Count),
            ("name", Text),
            ("builds", Count),
            ("pending", Count),
            ("running", Count),
            ("failed", Count),
            ("needs_person", Count),
            ("completed", Count),
            ("cancelled", Count),
        ],
    );
    let mut names = Names::new();
    for (code, t) in tallies {
        let name = names.of(tx, code).await?;
        r.push(vec![
            Cell::count(code),
            Cell::Text(name),
            Cell::count(t.total),
            Cell::count(t.get(BuildStatus::Pending)),
            Cell::count(t.get(BuildStatus::Running)),
            Cell::count(t.get(BuildStatus::Failed)),
            Cell::count(t.needs_person),
            Cell::count(t.get(BuildStatus::Completed)),
            Cell::count(t.get(BuildStatus::Cancelled)),
        ]);
    }
    Ok(r)
}

/// Milestone names for report rows: the default catalog's, and the names teams' own
/// catalogs give a code (all of them, `a / b`), since rows are per code (read once per
/// report).
pub(super) struct Names {
    default: StateCatalog,
    custom: Option<std::collections::HashMap<u8, String>>,
}

impl Names {
    pub(super) fn new() -> Self {
        Names { default: StateCatalog::default_catalog(), custom: None }
    }

    pub(super) async fn of(&mut self, tx: &mut dyn Tx, code: u8) -> StoreResult<String> {
        let Ok(state) = StateCode::new(i64::from(code)) else { return Ok(String::new()) };
        if self.custom.is_none() {
            let mut names: std::collections::HashMap<u8, std::collections::BTreeSet<String>> =
                Default::default();
            for catalog in tx.custom_catalogs().await? {
                for m in catalog.milestones() {
                    names.entry(m.code.get()).or_default().insert(m.name.clone());
                }
            }
            self.custom = Some(
                names.into_iter().map(|(k, v)| (k, v.into_iter().collect::<Vec<_>>().join(" / "))).collect(),
            );
        }
        let custom = self.custom.as_ref().and_then(|n| n.get(&code)).cloned().unwrap_or_default();
        Ok(match self.default.get(state) {
            // A code the default catalog names and some team's catalog names otherwise:
            // the row is both, and says so.
            Some(m) if !custom.is_empty() && custom != m.name => format!("{} / {custom}", m.name),
            Some(m) => m.name.clone(),
            None => custom,
        })
    }
}

pub(super) async fn matrix(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut latest = tx.latest_builds(&req.filter).await?;
    latest.sort_by(|a, b| {
        (a.image_type.as_str(), a.os.as_str(), a.platform.as_str()).cmp(&(
            b.image_type.as_str(),
            b.os.as_str(),
            b.platform.as_str(),
        ))
    });
    let mut r = Report::new(
        ReportName::Matrix,
        now,
        &[
            ("image_type", Text),
            ("os", Text),
            ("platform", Text),
            ("build", Text),
            ("state", Count),
            ("state_name", Text),
            ("status", Text),
            ("needs_person", Flag),
            ("updated_at", Time),
        ],
    );
    for b in &latest {
        r.push(vec![
            Cell::text(b.image_type.as_str()),
            Cell::text(b.os.as_str()),
            Cell::text(b.platform.as_str()),
            Cell::text(b.number.as_str()),
            Cell::count(b.state.get()),
            Cell::text(b.state_name()),
            Cell::text(b.status.as_str()),
            Cell::Flag(b.needs_intervention),
            Cell::Time(b.updated_at),
        ]);
    }
    Ok(r)
}

/// The latest build of each platform × OS × image type cell (the larger id on a tie
/// of creation times): what [`Tx::latest_builds`] returns, from any set of builds.
pub fn latest_of(builds: impl IntoIterator<Item = Build>) -> Vec<Build> {
    let mut cells: BTreeMap<(String, String, String), Build> = BTreeMap::new();
    for b in builds {
        let key = (b.platform.to_string(), b.os.to_string(), b.image_type.to_string());
        match cells.get(&key) {
            Some(held) if (held.created_at, held.id) >= (b.created_at, b.id) => {}
            _ => {
                cells.insert(key, b);
            }
        }
    }
    cells.into_values().collect()
}

/// The first day (UTC) of the month `months_back` before the month of `now`.
fn month_start(now: Timestamp, months_back: i32) -> Date {
    let today = now.to_zoned(TimeZone::UTC).date();
    let first = today.first_of_month();
    first.checked_sub(months_back.months()).unwrap_or(first)
}

fn at_midnight(d: Date) -> Timestamp {
    d.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(Timestamp::MIN)
}

/// Per month (UTC) of creation over the last 12 months, this one included: total,
/// delivered, failed, cancelled, and success % (delivered of total).
pub(super) async fn success_rate(
    tx: &mut dyn Tx,
    req: &ReportRequest,
    now: Timestamp,
) -> StoreResult<Report> {
    let first = month_start(now, 11);
    let mut filter = req.filter.clone();
    let from = at_midnight(first);
    filter.since = Some(filter.since.map_or(from, |s| s.max(from)));
    let mut months: BTreeMap<Date, Tally> =
        (0..12).map(|i| (month_start(now, 11 - i), Tally::default())).collect();
    for c in tx.count_builds(&filter, Group::Month).await? {
        let Ok(month) = c.key.parse::<Date>() else { continue };
        if let Some(t) = months.get_mut(&month) {
            t.add(&c);
        }
    }
    let mut r = Report::new(
        ReportName::SuccessRate,
        now,
        &[
            ("month", Text),
            ("total", Count),
            ("delivered", Count),
            ("failed", Count),
            ("cancelled", Count),
            ("success_pct", Percent),
        ],
    );
    // Of the builds that finished: a build still running or pending has not failed.
    for (month, t) in months {
        r.push(vec![
            Cell::Text(month.strftime("%Y-%m").to_string()),
            Cell::count(t.total),
            Cell::count(t.get(BuildStatus::Completed)),
            Cell::count(t.get(BuildStatus::Failed)),
            Cell::count(t.get(BuildStatus::Cancelled)),
            Cell::percent(
                t.get(BuildStatus::Completed),
                t.get(BuildStatus::Completed) + t.get(BuildStatus::Failed) + t.get(BuildStatus::Cancelled),
            ),
        ]);
    }
    Ok(r)
}

/// The month bucket of a creation time, as [`Group::Month`] keys it: `YYYY-MM-01`.
pub fn month_key(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).date().first_of_month().to_string()
}
