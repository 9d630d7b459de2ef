//! Where builds fail most: failure records by milestone and type.

use std::collections::{BTreeMap, BTreeSet};

use buildstate_core::{BuildId, FailureRecord};
use jiff::Timestamp;

use super::table::{Cell, CellKind::*, Report};
use super::{ReportName, ReportRequest, counts::Names};
use crate::{StoreResult, Tx};

#[derive(Default)]
struct Group {
    count: u64,
    builds: BTreeSet<BuildId>,
    latest: Option<FailureRecord>,
}

/// The later of two records: by time, then by build id and number, so that every
/// backend picks the same one.
fn later(a: &FailureRecord, b: &FailureRecord) -> bool {
    (a.at, a.build_id, a.number) > (b.at, b.build_id, b.number)
}

pub(super) async fn failures(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut groups: BTreeMap<(u8, String), Group> = BTreeMap::new();
    let mut total = 0u64;
    for f in tx.report_failures(&req.filter).await? {
        total += 1;
        let g = groups.entry((f.state.get(), f.info.failure_type.as_str().to_owned())).or_default();
        g.count += 1;
        g.builds.insert(f.build_id);
        if g.latest.as_ref().is_none_or(|l| later(&f, l)) {
            g.latest = Some(f);
        }
    }
    let mut rows: Vec<((u8, String), Group)> = groups.into_iter().collect();
    rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    let mut r = Report::new(
        ReportName::Failures,
        now,
        &[
            ("state", Count),
            ("state_name", Text),
            ("failure_type", Text),
            ("failures", Count),
            ("builds", Count),
            ("latest_at", Time),
            ("latest_class", Text),
            ("latest_message", Text),
        ],
    );
    let mut names = Names::new();
    for ((state, kind), g) in rows {
        let latest = g.latest.as_ref();
        r.push(vec![
            Cell::count(state),
            Cell::Text(names.of(tx, state).await?),
            Cell::Text(kind),
            Cell::count(g.count),
            Cell::count(g.builds.len()),
            Cell::opt_time(latest.map(|f| f.at)),
            Cell::opt_text(latest.map(|f| f.info.class.as_str())),
            Cell::opt_text(latest.map(|f| f.info.message.clone())),
        ]);
    }
    r.summary.push(("failures", Cell::count(total)));
    Ok(r)
}
