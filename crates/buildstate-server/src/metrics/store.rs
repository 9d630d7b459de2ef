//! The figures read from the store at scrape time, through the reports that answer the
//! same questions for `buildstate report` (one algorithm: no figure is counted twice in
//! two ways), and the lease listing.
//!
//! A scrape stays bounded by reading aggregates, never builds one by one: each report
//! runs in the store (the SQL backends count, group and read their attempt statistics
//! in the database), and what comes back grows with the catalog, the milestones and the
//! failure types, not with the number of builds. The one exception is bounded by the
//! catalog too: the delivery time of each platform × OS × image type cell's latest
//! delivered build is read from that build (one lookup per cell that has delivered).
//! Reports are read one after the other, each on its own snapshot: a transition between
//! two of them can show in one and not yet in the other.
//!
//! Counters (`…_total`) are the store's totals over its life: they only grow, except
//! when `buildstate prune` deletes builds, which Prometheus reads as a counter reset.

use std::collections::BTreeMap;

use buildstate_core::{BuildStatus, CatalogKind, FailureClass, StateCatalog};
use buildstate_store::report::{
    Cell, DurationRow, Report, ReportName, ReportRequest, StatKind, bucket_floor,
};
use buildstate_store::{Store, StoreError, StoreResult};
use jiff::Timestamp;

use super::text::{Exposition, Kind};

/// Upper bounds (seconds) of the milestone duration histogram: from a quick check to a
/// four-hour HANA install.
pub const DURATION_BOUNDS: [f64; 13] =
    [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0];

/// Completed attempts at one milestone, as a histogram: attempts per bound of
/// [`DURATION_BOUNDS`] (not cumulative; the last slot is above every bound), and the
/// exact total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durations {
    pub counts: [u64; DURATION_BOUNDS.len() + 1],
    pub sum_ms: u128,
}

impl Durations {
    /// Adds the attempts of one of the store's fine buckets. A fine bucket is about 1 %
    /// wide and is counted under the first bound its upper end does not pass, so an
    /// attempt within 1 % under a bound may be counted under the next one.
    fn add(&mut self, row: &DurationRow) {
        let lower = bucket_floor(row.bucket);
        let upper = bucket_floor(row.bucket.saturating_add(1));
        // The top bucket has no upper end.
        let upper_s = if upper > lower { upper as f64 / 1000.0 } else { f64::INFINITY };
        let slot = DURATION_BOUNDS.iter().position(|b| upper_s <= *b).unwrap_or(DURATION_BOUNDS.len());
        self.counts[slot] += row.attempts.max(0) as u64;
        self.sum_ms += row.total_ms.max(0) as u128;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A platform × OS × image type cell.
pub type Cell3 = (String, String, String);

/// Everything `/metrics` says about the store, with every known label set present
/// (at zero, or `None`, where nothing happened yet).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreFigures {
    /// Every status.
    pub builds: Vec<(BuildStatus, u64)>,
    pub needs_person: u64,
    /// (platform, outcome): every catalog platform × completed, failed.
    pub attempts: BTreeMap<(String, &'static str), u64>,
    /// Per milestone code: those of the default catalog, and any other with builds.
    pub durations: BTreeMap<u8, Durations>,
    pub running: BTreeMap<u8, u64>,
    pub leases_held: u64,
    pub leases_expired: u64,
    /// Per failure type: the well-known ones, and any other recorded.
    pub failures_by_type: BTreeMap<String, u64>,
    /// Every class.
    pub failures_by_class: Vec<(FailureClass, u64)>,
    /// Every catalog cell; `None` until it has delivered.
    pub last_delivery: BTreeMap<Cell3, Option<Timestamp>>,
}

fn int(r: &Report, row: &[Cell], key: &str) -> u64 {
    r.get(row, key).and_then(Cell::as_int).map_or(0, |n| n.max(0) as u64)
}

fn text(r: &Report, row: &[Cell], key: &str) -> String {
    match r.get(row, key) {
        Some(Cell::Text(s)) => s.clone(),
        Some(other) => other.plain(),
        None => String::new(),
    }
}

async fn report(store: &dyn Store, name: ReportName) -> StoreResult<Report> {
    store.report(&ReportRequest::new(name)).await
}

async fn names(store: &dyn Store, kind: CatalogKind) -> StoreResult<Vec<String>> {
    Ok(store.catalog(kind).await?.iter().map(|i| i.name().to_string()).collect())
}

/// Reads the figures from `store`.
pub async fn gather(store: &dyn Store) -> StoreResult<StoreFigures> {
    let mut f = StoreFigures::default();
    let now = builds(store, &mut f).await?;
    let platforms = names(store, CatalogKind::Platform).await?;
    attempts(store, &platforms, &mut f).await?;
    milestones(store, &mut f).await?;
    let leases = store.leases().await?;
    f.leases_held = leases.len() as u64;
    f.leases_expired = leases.iter().filter(|l| l.is_expired(now)).count() as u64;
    failures(store, &mut f).await?;
    deliveries(store, &platforms, &mut f).await?;
    Ok(f)
}

/// Builds by status, from `overview`; returns the store's clock as it computed it,
/// which is the clock that judges lease expiry (`Store` says so).
async fn builds(store: &dyn Store, f: &mut StoreFigures) -> StoreResult<Timestamp> {
    let overview = report(store, ReportName::Overview).await?;
    let row = overview.rows.first().map(Vec::as_slice).unwrap_or_default();
    f.builds = BuildStatus::ALL.iter().map(|&s| (s, int(&overview, row, s.as_str()))).collect();
    f.needs_person = int(&overview, row, "needs_person");
    Ok(overview.generated_at)
}

/// Attempts per platform and outcome, from `cost` (which sums them per platform and
/// phase; its money columns are not read).
async fn attempts(store: &dyn Store, platforms: &[String], f: &mut StoreFigures) -> StoreResult<()> {
    let outcomes = [StatKind::Completed.as_str(), StatKind::Failed.as_str()];
    for p in platforms {
        for o in outcomes {
            f.attempts.insert((p.clone(), o), 0);
        }
    }
    let cost = report(store, ReportName::Cost).await?;
    for row in &cost.rows {
        let platform = text(&cost, row, "platform");
        let (all, failed) = (int(&cost, row, "attempts"), int(&cost, row, "failed_attempts"));
        *f.attempts.entry((platform.clone(), outcomes[0])).or_default() += all.saturating_sub(failed);
        *f.attempts.entry((platform, outcomes[1])).or_default() += failed;
    }
    Ok(())
}

/// Per milestone: durations of completed attempts (`durations`), running builds
/// (`states`). Every code of the default catalog is there; a team catalog's own codes
/// once they have something.
async fn milestones(store: &dyn Store, f: &mut StoreFigures) -> StoreResult<()> {
    let codes: Vec<u8> = StateCatalog::default_catalog().codes().map(|c| c.get()).collect();
    f.durations = codes.iter().map(|&c| (c, Durations::default())).collect();
    for row in store.duration_buckets().await? {
        f.durations.entry(row.state.get()).or_default().add(&row);
    }
    f.running = codes.iter().map(|&c| (c, 0)).collect();
    let states = report(store, ReportName::States).await?;
    for row in &states.rows {
        f.running.insert(int(&states, row, "state") as u8, int(&states, row, "running"));
    }
    Ok(())
}

/// Failure records by type (`failures`) and by class: the transient ones are `flaky`'s,
/// every other is persistent (the class is closed: [`FailureClass`]).
async fn failures(store: &dyn Store, f: &mut StoreFigures) -> StoreResult<()> {
    f.failures_by_type =
        buildstate_core::FailureType::WELL_KNOWN.iter().map(|t| ((*t).to_owned(), 0)).collect();
    let failures = report(store, ReportName::Failures).await?;
    let mut total = 0;
    for row in &failures.rows {
        let n = int(&failures, row, "failures");
        *f.failures_by_type.entry(text(&failures, row, "failure_type")).or_default() += n;
        total += n;
    }
    let flaky = report(store, ReportName::Flaky).await?;
    let transient: u64 = flaky.rows.iter().map(|row| int(&flaky, row, "transient_failures")).sum();
    f.failures_by_class = FailureClass::ALL
        .iter()
        .map(|&c| match c {
            FailureClass::Transient => (c, transient),
            FailureClass::Persistent => (c, total.saturating_sub(transient)),
        })
        .collect();
    Ok(())
}

/// The delivery time of each catalog cell's latest delivered build: the matrix under
/// `status=completed` names it (latest by creation, which is the last delivered but for
/// builds that overtook one another), and the build itself says when it ended — not the
/// matrix's `updated_at`, which an artifact or a note recorded after delivery moves.
async fn deliveries(store: &dyn Store, platforms: &[String], f: &mut StoreFigures) -> StoreResult<()> {
    let (oses, images) = (names(store, CatalogKind::Os).await?, names(store, CatalogKind::ImageType).await?);
    for p in platforms {
        for o in &oses {
            for i in &images {
                f.last_delivery.insert((p.clone(), o.clone(), i.clone()), None);
            }
        }
    }
    let mut request = ReportRequest::new(ReportName::Matrix);
    request.filter.statuses = vec![BuildStatus::Completed];
    let matrix = store.report(&request).await?;
    for row in &matrix.rows {
        let cell =
            (text(&matrix, row, "platform"), text(&matrix, row, "os"), text(&matrix, row, "image_type"));
        let number = text(&matrix, row, "build");
        match store.find_build(&number).await {
            // A number found is that build, still delivered (a reference that is a
            // prefix could name another once its own build is pruned).
            Ok(b) if b.number.as_str() == number && b.status == BuildStatus::Completed => {
                f.last_delivery.insert(cell, b.ended_at);
            }
            // Pruned or rewound since the matrix was read: the next scrape sees it.
            Ok(_) | Err(StoreError::BuildNotFound(_) | StoreError::AmbiguousRef { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl StoreFigures {
    pub fn write(&self, e: &mut Exposition) {
        let mut fam = e.family("buildstate_builds", Kind::Gauge, "Builds in the store, by status.");
        for (s, n) in &self.builds {
            fam.sample(&[("status", s.as_str())], *n as f64);
        }
        e.family(
            "buildstate_builds_needing_person",
            Kind::Gauge,
            "Builds whose retries are exhausted or whose failure is persistent: a person must decide.",
        )
        .sample(&[], self.needs_person as f64);

        let mut fam = e.family(
            "buildstate_attempts_total",
            Kind::Counter,
            "Milestone attempts recorded in the store, by platform and outcome (completed or failed).",
        );
        for ((platform, outcome), n) in &self.attempts {
            fam.sample(&[("platform", platform.as_str()), ("outcome", outcome)], *n as f64);
        }

        let mut fam = e.family(
            "buildstate_milestone_duration_seconds",
            Kind::Histogram,
            "Duration of completed attempts per milestone (state code) over the store's life; \
             an attempt within 1% under a bound may be counted under the next one.",
        );
        let les: Vec<String> = DURATION_BOUNDS.iter().map(|b| super::text::number(*b)).collect();
        for (state, d) in &self.durations {
            let state = state.to_string();
            let labels = [("state", state.as_str())];
            let mut seen = 0;
            for (i, le) in les.iter().enumerate() {
                seen += d.counts[i];
                fam.suffixed("_bucket", &[("state", state.as_str()), ("le", le)], seen as f64);
            }
            fam.suffixed("_bucket", &[("state", state.as_str()), ("le", "+Inf")], d.count() as f64);
            fam.suffixed("_sum", &labels, d.sum_ms as f64 / 1000.0);
            fam.suffixed("_count", &labels, d.count() as f64);
        }

        let mut fam = e.family(
            "buildstate_builds_running",
            Kind::Gauge,
            "Running builds, by the milestone (state code) they are at.",
        );
        for (state, n) in &self.running {
            let state = state.to_string();
            fam.sample(&[("state", state.as_str())], *n as f64);
        }

        e.family("buildstate_leases_held", Kind::Gauge, "Leases held on builds, expired ones included.")
            .sample(&[], self.leases_held as f64);
        e.family(
            "buildstate_leases_expired",
            Kind::Gauge,
            "Held leases whose holder missed its heartbeats: another runner may take the build over.",
        )
        .sample(&[], self.leases_expired as f64);

        let mut fam = e.family(
            "buildstate_failures_total",
            Kind::Counter,
            "Failure records in the store, by failure type.",
        );
        for (t, n) in &self.failures_by_type {
            fam.sample(&[("failure_type", t.as_str())], *n as f64);
        }
        let mut fam = e.family(
            "buildstate_failures_by_class_total",
            Kind::Counter,
            "Failure records in the store, by class (transient or persistent).",
        );
        for (c, n) in &self.failures_by_class {
            fam.sample(&[("class", c.as_str())], *n as f64);
        }

        let mut fam = e.family(
            "buildstate_last_delivery_timestamp_seconds",
            Kind::Gauge,
            "When the latest delivered build of each platform x OS x image type was delivered \
             (Unix time); 0 for a cell that never delivered.",
        );
        for ((platform, os, image), at) in &self.last_delivery {
            let seconds = at.map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0);
            fam.sample(
                &[("platform", platform.as_str()), ("os", os.as_str()), ("image_type", image.as_str())],
                seconds,
            );
        }
    }
}

#[cfg(test)]
mod duration_tests {
    use buildstate_core::StateCode;
    use buildstate_store::report::bucket;

    use super::*;

    #[test]
    fn attempts_fall_under_the_first_bound_they_do_not_pass() {
        let mut d = Durations::default();
        for ms in [500, 20_000, 100_000, 100_000, 20_000_000] {
            d.add(&DurationRow {
                state: StateCode::new(5).expect("code"),
                bucket: bucket(ms),
                attempts: 1,
                total_ms: ms as i64,
            });
        }
        let at = |bound: f64| DURATION_BOUNDS.iter().position(|b| *b == bound).expect("a bound");
        assert_eq!(d.counts[at(1.0)], 1);
        assert_eq!(d.counts[at(30.0)], 1);
        assert_eq!(d.counts[at(120.0)], 2);
        assert_eq!(d.counts[DURATION_BOUNDS.len()], 1, "above every bound: +Inf only");
        assert_eq!((d.count(), d.sum_ms), (5, 20_220_500));
    }
}
