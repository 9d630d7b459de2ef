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
use crate::report::{Cell, ReportFilter, ReportName, ReportRequest};
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
            let summary: Vec<(&str, Cell)> = got.summary.iter().map(|(k, v)| (&**k, v.clone())).collect();
            assert_eq!(summary, want.summary, "report {name} ({label}): the summary disagrees");
        }
        if label == "no filter" {
            assert!(!got.rows.is_empty(), "report {name}: the fixture has something to show");
        }
    }
}

/// The attempt statistics a SQL store keeps in the transaction of each change (what the
/// unfiltered duration, cost, flaky and ETA reports read) agree with the histories
/// (what a report filtered by time reads) after transitions of every kind, an import, a
/// replacing import and a prune.
pub async fn attempt_statistics_follow_every_change(h: &impl Harness) {
    use buildstate_core::{BuildParts, FailureClass};

    use super::support::{complete, create, fail, retry, rewind, run, seed, start, start_forced};
    use crate::{ImportMode, PruneRule};

    let s = h.open().await;
    let st = s.as_ref();
    fixture::seed_reports(st).await;
    let new = seed(st).await;
    // Transitions: completions, failures and their recovery, a forced start over an open
    // attempt, a rewind and the milestones run again.
    let a = create(st, &new).await;
    for c in [0, 5, 10] {
        run(st, a.id, start(c)).await;
        run(st, a.id, complete(c)).await;
    }
    run(st, a.id, start(15)).await;
    run(st, a.id, fail(15, FailureClass::Transient, 5)).await;
    run(st, a.id, retry(false, None)).await;
    run(st, a.id, start(15)).await;
    run(st, a.id, start_forced(15)).await;
    run(st, a.id, complete(15)).await;
    run(st, a.id, rewind(5, "rebuild the image")).await;
    run(st, a.id, start(5)).await;
    run(st, a.id, complete(5)).await;
    // A delivered build, imported, replaced by its own document, and pruned.
    let b = create(st, &new).await;
    for c in buildstate_core::StateCatalog::default_catalog().codes() {
        run(st, b.id, complete(i64::from(c.get()))).await;
    }
    let doc = st.export_build(b.id).await.expect("export");
    let parts: BuildParts = doc.clone().into_parts().expect("valid");
    st.import_build(parts.clone(), ImportMode::Replace).await.expect("replace with itself");
    let mut copy = parts;
    copy.build.id = buildstate_core::BuildId::generate(1, 42);
    copy.build.number = buildstate_core::BuildNumber::new("copied-by-import").expect("a number");
    for f in &mut copy.failures {
        f.build_id = copy.build.id;
    }
    st.import_build(copy, ImportMode::CreateOnly).await.expect("import a copy");
    let rule = PruneRule::new([BuildStatus::Completed], crate::now()).expect("a rule");
    assert!(st.prune_build(b.id, &rule).await.expect("prune").is_some(), "the delivered build is pruned");

    let everything = ReportFilter { since: Some(jiff::Timestamp::UNIX_EPOCH), ..Default::default() };
    for name in
        [ReportName::Durations, ReportName::Cost, ReportName::Flaky, ReportName::TimeSaved, ReportName::Eta]
    {
        let mut kept = ReportRequest::new(name);
        kept.rates.insert("aws-commercial".into(), 0.68);
        let mut recomputed = kept.clone();
        recomputed.filter = everything.clone();
        let kept = st.report(&kept).await.expect("the report from the statistics");
        let recomputed = st.report(&recomputed).await.expect("the report from the histories");
        if name == ReportName::Eta {
            // Elapsed times move between the two reports; the estimates must not.
            let pick = |r: &crate::report::Report| -> Vec<_> {
                r.rows
                    .iter()
                    .map(|row| {
                        (
                            r.get(row, "build").cloned(),
                            r.get(row, "remaining_p50_ms").cloned(),
                            r.get(row, "basis").cloned(),
                        )
                    })
                    .collect()
            };
            assert_eq!(
                pick(&kept),
                pick(&recomputed),
                "report eta: kept statistics disagree with the histories"
            );
        } else {
            assert_eq!(
                kept.rows, recomputed.rows,
                "report {name}: kept statistics disagree with the histories"
            );
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
