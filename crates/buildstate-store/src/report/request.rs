//! What a report is asked for: its name, the builds it looks at, and its parameters.

use std::collections::BTreeMap;

use buildstate_core::{Build, BuildStatus, Name, StateCode};
use jiff::Timestamp;

use crate::BuildFilter;

macro_rules! report_names {
    ($($v:ident => $s:literal: $about:literal),+ $(,)?) => {
        /// Every report, by the name `buildstate report NAME` takes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReportName { $($v),+ }

        impl ReportName {
            pub const ALL: &'static [ReportName] = &[$(ReportName::$v),+];

            pub const fn as_str(self) -> &'static str {
                match self { $(ReportName::$v => $s),+ }
            }

            /// The question the report answers, for help and listings.
            pub const fn about(self) -> &'static str {
                match self { $(ReportName::$v => $about),+ }
            }
        }
    };
}

report_names! {
    Overview => "overview": "total builds and the count per status; how many need a person",
    Platforms => "platforms": "per platform: total, completed, failed, running, cancelled (busiest first)",
    Os => "os": "per OS version: total, completed, failed, running, cancelled (busiest first)",
    Images => "images": "per image type: total, completed, failed, running, cancelled (busiest first)",
    Matrix => "matrix": "platform x OS version for each image type: the latest build of each cell",
    Running => "running": "running builds: milestone, attempt, elapsed, the runner holding the lease, ETA",
    Attention => "attention": "failed builds: failure count, last failure, the command that resumes them",
    States => "states": "per milestone: builds at it, running there, failed there",
    Failures => "failures": "most common failure milestones and types, with counts and the latest message",
    Durations => "durations": "per milestone over completed attempts: count, mean, min, p50, p90, max",
    SuccessRate => "success-rate": "per month over the last 12 months: total, delivered, success %",
    PlatformDurations => "platform-durations": "per platform over delivered builds: count, mean and p90 duration",
    ExcessiveFailures => "excessive-failures": "builds with more than --threshold N (default 5) failure records",
    Resumable => "resumable": "failed builds (at --from CODE) that a retry resumes without --force",
    Ready => "ready": "pending or failed builds to (re)trigger, with their CI link",
    Eta => "eta": "for each running build: remaining time p50/p90 and the expected finish",
    TimeSaved => "time-saved": "what resuming saved: milestones a resume did not run again, in time and cost",
    Cost => "cost": "attempt time x the platform's hourly rate, by milestone band and platform",
    Flaky => "flaky": "per milestone: retry rate, transient failures, their common message, time to recover",
}

impl std::fmt::Display for ReportName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReportName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        ReportName::ALL.iter().copied().find(|n| n.as_str() == wanted).ok_or_else(|| {
            let names: Vec<&str> = ReportName::ALL.iter().map(|n| n.as_str()).collect();
            let shown: String = s.chars().take(40).collect();
            format!("`{}` is not a report (reports: {})", shown.escape_debug(), names.join(", "))
        })
    }
}

/// The metadata key naming the pipeline file a build belongs to (`buildstate run`
/// records it): what `--pipeline` filters on.
pub const PIPELINE_KEY: &str = "pipeline";

/// Which builds a report looks at: all conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Created at or after.
    pub since: Option<Timestamp>,
    pub platform: Option<Name>,
    pub os: Option<Name>,
    pub image_type: Option<Name>,
    /// The `pipeline` metadata value.
    pub pipeline: Option<String>,
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<BuildStatus>,
    /// Builds with more failure records than this (reports that are only about builds
    /// that failed narrow to them in the store, where an index finds the few).
    pub more_failures_than: Option<u32>,
}

impl ReportFilter {
    /// Whether `b` meets every condition: the filter's meaning, which the SQL backends'
    /// WHERE clauses say too.
    pub fn matches(&self, b: &Build) -> bool {
        self.since.is_none_or(|t| b.created_at >= t)
            && self.platform.as_ref().is_none_or(|p| &b.platform == p)
            && self.os.as_ref().is_none_or(|o| &b.os == o)
            && self.image_type.as_ref().is_none_or(|i| &b.image_type == i)
            && self.pipeline.as_ref().is_none_or(|p| pipeline_of(b) == Some(p.as_str()))
            && (self.statuses.is_empty() || self.statuses.contains(&b.status))
            && self.more_failures_than.is_none_or(|n| b.failure_count > n)
    }

    /// The same filter with `statuses` narrowed to those also in `only`; `None` when
    /// none is left (a report about failed builds under `--status running` looks at
    /// nothing).
    pub(crate) fn narrowed(&self, only: &[BuildStatus]) -> Option<ReportFilter> {
        let statuses: Vec<BuildStatus> = if self.statuses.is_empty() {
            only.to_vec()
        } else {
            self.statuses.iter().copied().filter(|s| only.contains(s)).collect()
        };
        (!statuses.is_empty()).then(|| ReportFilter { statuses, ..self.clone() })
    }

    /// The part of the filter `list_builds` knows (the rest is checked by [`Self::matches`]).
    pub(crate) fn base(&self) -> BuildFilter {
        BuildFilter {
            since: self.since,
            platform: self.platform.clone(),
            os: self.os.clone(),
            image_type: self.image_type.clone(),
            status: match self.statuses.as_slice() {
                [one] => Some(*one),
                _ => None,
            },
            ..BuildFilter::default()
        }
    }
}

pub(crate) fn pipeline_of(b: &Build) -> Option<&str> {
    b.metadata.iter().find(|(k, _)| k.as_str() == PIPELINE_KEY).map(|(_, v)| v.as_str())
}

/// A report to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRequest {
    pub name: ReportName,
    pub filter: ReportFilter,
    /// `excessive-failures`: more than this many failure records (default 5).
    pub threshold: u32,
    /// `resumable`: only builds failed at this milestone.
    pub from: Option<StateCode>,
    /// `cost`, `time-saved`: hourly rate per platform name (`[cost]` in the config file).
    pub rates: BTreeMap<String, f64>,
}

impl ReportRequest {
    pub fn new(name: ReportName) -> Self {
        ReportRequest {
            name,
            filter: ReportFilter::default(),
            threshold: 5,
            from: None,
            rates: BTreeMap::new(),
        }
    }

    pub(crate) fn rate(&self, platform: &Name) -> Option<f64> {
        self.rates.get(platform.as_str()).copied()
    }
}
