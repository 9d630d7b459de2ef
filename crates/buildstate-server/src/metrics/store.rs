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
use buildstate_store::report::{Cell, Report, ReportName, ReportRequest, StatKind};
use buildstate_store::{Store, StoreError, StoreResult};
use jiff::Timestamp;

use super::text::{Exposition, Kind};

/// Completed attempts at one milestone: what the `durations` report says of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durations {
    pub count: u64,
    pub mean_ms: u64,
    pub p50_ms: u64,
    pub p90_ms: u64,
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
    pub durations: BTreeMap<u8, Option<Durations>>,
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
    f.durations = codes.iter().map(|&c| (c, None)).collect();
    let durations = report(store, ReportName::Durations).await?;
    for row in &durations.rows {
        let d = Durations {
            count: int(&durations, row, "count"),
            mean_ms: int(&durations, row, "mean_ms"),
            p50_ms: int(&durations, row, "p50_ms"),
            p90_ms: int(&durations, row, "p90_ms"),
        };
        f.durations.insert(int(&durations, row, "state") as u8, (d.count > 0).then_some(d));
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
            Kind::Summary,
            "Duration of completed attempts per milestone (state code) over the store's life; \
             quantiles are nearest-rank, at most 1% under the exact value.",
        );
        for (state, d) in &self.durations {
            let state = state.to_string();
            let labels = [("state", state.as_str())];
            let (count, sum) = match d {
                Some(d) => {
                    for (q, ms) in [("0.5", d.p50_ms), ("0.9", d.p90_ms)] {
                        fam.sample(&[("state", state.as_str()), ("quantile", q)], ms as f64 / 1000.0);
                    }
                    // The report's mean is rounded to the millisecond: so is this sum.
                    (d.count, d.count as f64 * d.mean_ms as f64 / 1000.0)
                }
                None => (0, 0.0),
            };
            fam.suffixed("_sum", &labels, sum);
            fam.suffixed("_count", &labels, count as f64);
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
