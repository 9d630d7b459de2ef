//! Reports: one case per report over a shared data set ([`fixture`]), each checked
//! against the same report computed independently from the exported documents
//! ([`oracle`]) under several filters — so that every backend gives the same answer,
//! and that answer agrees with the records.

mod fixture;
mod oracle;

use buildstate_core::{BuildDocument, BuildStatus, StateCode};
use jiff::SignedDuration;

use super::support::name;
use crate::conformance::Harness;
use crate::report::{ReportFilter, ReportName, ReportRequest};
use crate::{BuildFilter, Store};

/// The requests each report is checked under: no filter, and each filter alone.
fn variants(report: ReportName, now: jiff::Timestamp) -> Vec<(&'static str, ReportRequest)> {
    let mut base = ReportRequest::new(report);
    base.rates.insert("aws-commercial".into(), 0.68);
    base.rates.insert("azure".into(), 0.91);
    let with = |label, f: ReportFilter| {
        let mut r = base.clone();
        r.filter = f;
        (label, r)
    };
    let mut all_priced = base.clone();
    all_priced.rates.insert("gcp".into(), 0.5);
    let mut v = vec![
        ("no filter", base.clone()),
        ("every platform priced", all_priced),
        with(
            "--platform aws-commercial",
            ReportFilter { platform: Some(name("aws-commercial")), ..Default::default() },
        ),
        with(
            "--os ubuntu-24.04 --image base",
            ReportFilter {
                os: Some(name("ubuntu-24.04")),
                image_type: Some(name("base")),
                ..Default::default()
            },
        ),
        with(
            "--status failed,running",
            ReportFilter { statuses: vec![BuildStatus::Failed, BuildStatus::Running], ..Default::default() },
        ),
        with(
            "--since 40d",
            ReportFilter { since: Some(now - SignedDuration::from_hours(40 * 24)), ..Default::default() },
        ),
        with("--pipeline images", ReportFilter { pipeline: Some("images".into()), ..Default::default() }),
    ];
    let mut low = base.clone();
    low.threshold = 0;
    v.push(("--threshold 0", low));
    let mut from = base;
    from.from = Some(StateCode::new(30).expect("a code"));
    v.push(("--from 30", from));
    v
}

async fn documents(s: &dyn Store) -> Vec<BuildDocument> {
    let mut docs = Vec::new();
    for b in s.list_builds(&BuildFilter::default()).await.expect("list the builds") {
        docs.push(s.export_build(b.id).await.expect("export a build"));
    }
    docs
}

async fn check(h: &impl Harness, name: ReportName) {
    let s = h.open().await;
    let st = s.as_ref();
    fixture::seed_reports(st).await;
    let docs = documents(st).await;
    let leases = st.leases().await.expect("list the leases");
    for (label, req) in variants(name, crate::now()) {
        let got = st.report(&req).await.unwrap_or_else(|e| panic!("report {name} ({label}): {e}"));
        assert_eq!(got.name, name);
        let want = oracle::expected(&req, &docs, &leases, got.generated_at);
        for row in &got.rows {
            assert_eq!(row.len(), got.columns.len(), "report {name} ({label}): a row of the wrong width");
        }
        assert_eq!(got.rows, want.rows, "report {name} ({label}): the rows disagree with the records");
        if !want.summary.is_empty() {
            assert_eq!(got.summary, want.summary, "report {name} ({label}): the summary disagrees");
        }
        if label == "no filter" {
            assert!(!got.rows.is_empty(), "report {name}: the fixture has something to show");
        }
    }
}

macro_rules! report_cases {
    ($($case:ident => $name:ident),+ $(,)?) => {
        $(
            #[doc = concat!("`report ", stringify!($name), "` agrees with the exported documents under every filter.")]
            pub async fn $case(h: &impl Harness) {
                check(h, ReportName::$name).await;
            }
        )+
    };
}

report_cases! {
    report_overview_agrees_with_the_records => Overview,
    report_platforms_agrees_with_the_records => Platforms,
    report_os_agrees_with_the_records => Os,
    report_images_agrees_with_the_records => Images,
    report_matrix_agrees_with_the_records => Matrix,
    report_running_agrees_with_the_records => Running,
    report_attention_agrees_with_the_records => Attention,
    report_states_agrees_with_the_records => States,
    report_failures_agrees_with_the_records => Failures,
    report_durations_agrees_with_the_records => Durations,
    report_success_rate_agrees_with_the_records => SuccessRate,
    report_platform_durations_agrees_with_the_records => PlatformDurations,
    report_excessive_failures_agrees_with_the_records => ExcessiveFailures,
    report_resumable_agrees_with_the_records => Resumable,
    report_ready_agrees_with_the_records => Ready,
    report_eta_agrees_with_the_records => Eta,
    report_time_saved_agrees_with_the_records => TimeSaved,
    report_cost_agrees_with_the_records => Cost,
    report_flaky_agrees_with_the_records => Flaky,
}
