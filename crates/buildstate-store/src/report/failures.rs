//! Where builds fail most: failure records by milestone and type.

use jiff::Timestamp;

use super::table::{Cell, CellKind::*, Report};
use super::{ReportName, ReportRequest, counts::Names};
use crate::{StoreResult, Tx};

pub(super) async fn failures(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut rows = tx.failure_groups(&req.filter).await?;
    let total: u64 = rows.iter().map(|g| g.failures).sum();
    rows.sort_by(|a, b| {
        b.failures
            .cmp(&a.failures)
            .then_with(|| (a.state, a.failure_type.as_str()).cmp(&(b.state, b.failure_type.as_str())))
    });
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
    for g in rows {
        r.push(vec![
            Cell::count(g.state.get()),
            Cell::Text(names.of(tx, g.state.get()).await?),
            Cell::text(g.failure_type.as_str()),
            Cell::count(g.failures),
            Cell::count(g.builds),
            Cell::Time(g.latest.at),
            Cell::text(g.latest.info.class.as_str()),
            Cell::text(g.latest.info.message.clone()),
        ]);
    }
    r.sum("failures", Cell::count(total));
    Ok(r)
}
