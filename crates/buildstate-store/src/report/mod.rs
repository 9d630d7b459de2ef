//! Reports: every monitoring question (SPEC §6) answered from the store, the same on
//! every backend.
//!
//! Each report is written once, here, over a handful of [`Tx`] primitives that select
//! builds, their attempts and their failure records by a [`ReportFilter`], and count
//! builds by a [`Group`]. The primitives have in-memory defaults built on the other
//! primitives (what the JSON-file store uses); the SQL backends answer them with shared
//! SQL that filters, counts and picks the latest build per cell in the database.
//! `Store::report` runs a report in one read transaction: one consistent snapshot.

mod attempts;
mod counts;
mod failures;
mod lists;
mod request;
mod stats;
mod table;
mod timing;

use buildstate_core::BuildStatus;

pub use attempts::{
    Backfill, COARSE, DurationRow, SAVING_EVENTS, STAT_EVENTS, Saving, StatKind, StatRow, StatSource,
    StatTotal, aggregate, bucket, bucket_floor, coarse, coarse_floor, contributions, contributions_in,
    contributions_of_tail, durations_of, from_sources, sum, sum_durations, totals,
};
pub use counts::{latest_of, month_key};
pub use request::{PIPELINE_KEY, ReportFilter, ReportName, ReportRequest};
pub use stats::{Summary, mean, nearest_rank};
pub use table::{Cell, CellKind, Column, Report, cents};
pub use timing::{
    CellKey, EtaPercentiles, band, eta_percentiles_of, pattern, percentile_buckets, resume_savings,
    savings_in_memory, savings_of_tail,
};

use crate::{StoreResult, Tx};

/// What [`Tx::count_builds`] groups by, besides status and whether a person is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    All,
    Platform,
    Os,
    ImageType,
    State,
    /// The UTC month of creation, keyed `YYYY-MM-01` ([`month_key`]).
    Month,
}

/// Builds of one group, status and need of a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildCount {
    /// The group's value: a name, a state code's digits, a month; empty for [`Group::All`].
    pub key: String,
    pub status: BuildStatus,
    pub needs_intervention: bool,
    pub builds: u64,
}

/// The failure records of one milestone and type ([`Tx::failure_groups`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureGroup {
    pub state: buildstate_core::StateCode,
    pub failure_type: buildstate_core::FailureType,
    pub failures: u64,
    /// How many builds they belong to.
    pub builds: u64,
    /// The latest: by time, then build id, then number (so every backend picks one).
    pub latest: buildstate_core::FailureRecord,
}

/// Groups failure records by milestone and type: [`Tx::failure_groups`]'s meaning, and
/// its default.
pub fn group_failures(records: Vec<buildstate_core::FailureRecord>) -> Vec<FailureGroup> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut groups: BTreeMap<(u8, String), (FailureGroup, BTreeSet<buildstate_core::BuildId>)> =
        BTreeMap::new();
    for f in records {
        let key = (f.state.get(), f.info.failure_type.as_str().to_owned());
        match groups.get_mut(&key) {
            Some((g, builds)) => {
                g.failures += 1;
                builds.insert(f.build_id);
                if (f.at, f.build_id, f.number) > (g.latest.at, g.latest.build_id, g.latest.number) {
                    g.latest = f;
                }
            }
            None => {
                let g = FailureGroup {
                    state: f.state,
                    failure_type: f.info.failure_type.clone(),
                    failures: 1,
                    builds: 0,
                    latest: f.clone(),
                };
                groups.insert(key, (g, BTreeSet::from([f.build_id])));
            }
        }
    }
    groups.into_values().map(|(g, builds)| FailureGroup { builds: builds.len() as u64, ..g }).collect()
}

/// A delivered build's time from its first start to its delivery, in milliseconds.
pub fn delivery_ms(started_at: Option<jiff::Timestamp>, ended_at: Option<jiff::Timestamp>) -> u64 {
    match (started_at, ended_at) {
        (Some(s), Some(e)) => (e.as_millisecond() - s.as_millisecond()).max(0) as u64,
        _ => 0,
    }
}

/// The group key of a build, as [`Tx::count_builds`] reports it.
pub fn group_key(b: &buildstate_core::Build, by: Group) -> String {
    match by {
        Group::All => String::new(),
        Group::Platform => b.platform.to_string(),
        Group::Os => b.os.to_string(),
        Group::ImageType => b.image_type.to_string(),
        Group::State => b.state.get().to_string(),
        Group::Month => month_key(b.created_at),
    }
}

/// Counts builds in memory: [`Tx::count_builds`]'s meaning, and its default.
pub fn count_in_memory(builds: &[buildstate_core::Build], by: Group) -> Vec<BuildCount> {
    let mut counts: std::collections::BTreeMap<(String, &'static str, bool), (BuildStatus, u64)> =
        Default::default();
    for b in builds {
        let e = counts
            .entry((group_key(b, by), b.status.as_str(), b.needs_intervention))
            .or_insert((b.status, 0));
        e.1 += 1;
    }
    counts
        .into_iter()
        .map(|((key, _, needs_intervention), (status, builds))| BuildCount {
            key,
            status,
            needs_intervention,
            builds,
        })
        .collect()
}

/// Computes `req` on one transaction.
pub(crate) async fn compute(tx: &mut dyn Tx, req: &ReportRequest) -> StoreResult<Report> {
    let now = tx.now().await?;
    match req.name {
        ReportName::Overview => counts::overview(tx, req, now).await,
        ReportName::Platforms => counts::per(tx, req, now, Group::Platform).await,
        ReportName::Os => counts::per(tx, req, now, Group::Os).await,
        ReportName::Images => counts::per(tx, req, now, Group::ImageType).await,
        ReportName::Matrix => counts::matrix(tx, req, now).await,
        ReportName::States => counts::states(tx, req, now).await,
        ReportName::SuccessRate => counts::success_rate(tx, req, now).await,
        ReportName::Running => timing::running(tx, req, now).await,
        ReportName::Eta => timing::eta(tx, req, now).await,
        ReportName::Attention => lists::attention(tx, req, now).await,
        ReportName::ExcessiveFailures => lists::excessive(tx, req, now).await,
        ReportName::Resumable => lists::resumable(tx, req, now).await,
        ReportName::Ready => lists::ready(tx, req, now).await,
        ReportName::Failures => failures::failures(tx, req, now).await,
        ReportName::Durations => timing::durations(tx, req, now).await,
        ReportName::PlatformDurations => timing::platform_durations(tx, req, now).await,
        ReportName::TimeSaved => timing::time_saved(tx, req, now).await,
        ReportName::Cost => timing::cost(tx, req, now).await,
        ReportName::Flaky => timing::flaky(tx, req, now).await,
    }
}
