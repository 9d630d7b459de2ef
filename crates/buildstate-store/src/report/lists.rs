//! Reports that list builds a person acts on: attention, excessive failures, resumable
//! and ready builds.

use std::collections::HashMap;

use buildstate_core::{Build, BuildId, BuildStatus, FailureRecord};
use jiff::Timestamp;

use super::table::{Cell, CellKind::*, Report};
use super::{ReportFilter, ReportName, ReportRequest};
use crate::{StoreResult, Tx};

/// The latest failure record of each build (the highest number).
pub(super) fn last_failures(records: Vec<FailureRecord>) -> HashMap<BuildId, FailureRecord> {
    let mut last: HashMap<BuildId, FailureRecord> = HashMap::new();
    for f in records {
        match last.get(&f.build_id) {
            Some(held) if held.number >= f.number => {}
            _ => {
                last.insert(f.build_id, f);
            }
        }
    }
    last
}

/// The command that moves a failed build on: a plain retry, or (when it needs a person)
/// the recorded override.
fn retry_command(b: &Build) -> String {
    if b.needs_intervention {
        format!("buildstate retry {} --force --reason \"…\"", b.number)
    } else {
        format!("buildstate retry {}", b.number)
    }
}

/// Builds of `statuses` under the request's filter, with the last failure of each.
async fn with_last_failure(
    tx: &mut dyn Tx,
    req: &ReportRequest,
    statuses: &[BuildStatus],
) -> StoreResult<Vec<(Build, Option<FailureRecord>)>> {
    let Some(filter) = req.filter.narrowed(statuses) else { return Ok(Vec::new()) };
    let builds = tx.report_builds(&filter).await?;
    let mut last = last_failures(tx.report_failures(&filter).await?);
    Ok(builds
        .into_iter()
        .map(|b| {
            let f = last.remove(&b.id);
            (b, f)
        })
        .collect())
}

/// The columns that name a build and where it is, first in every report about builds.
pub(super) const BUILD_COLUMNS: [(&str, super::table::CellKind); 6] = [
    ("build", Text),
    ("platform", Text),
    ("os", Text),
    ("image_type", Text),
    ("state", Count),
    ("state_name", Text),
];

pub(super) fn build_cells(b: &Build) -> Vec<Cell> {
    vec![
        Cell::text(b.number.as_str()),
        Cell::text(b.platform.as_str()),
        Cell::text(b.os.as_str()),
        Cell::text(b.image_type.as_str()),
        Cell::count(b.state.get()),
        Cell::text(b.state_name()),
    ]
}

const FAILURE_COLUMNS: [(&str, super::table::CellKind); 4] = [
    ("last_failure_at", Time),
    ("last_failure_type", Text),
    ("last_failure_class", Text),
    ("last_failure_message", Text),
];

fn failure_cells(f: Option<&FailureRecord>) -> Vec<Cell> {
    match f {
        Some(f) => vec![
            Cell::Time(f.at),
            Cell::text(f.info.failure_type.as_str()),
            Cell::text(f.info.class.as_str()),
            Cell::text(f.info.message.clone()),
        ],
        None => vec![Cell::Null; 4],
    }
}

fn columns(
    extra_before: &[(&'static str, super::table::CellKind)],
    extra_after: &[(&'static str, super::table::CellKind)],
) -> Vec<(&'static str, super::table::CellKind)> {
    let mut c = BUILD_COLUMNS.to_vec();
    c.extend_from_slice(extra_before);
    c.extend_from_slice(&FAILURE_COLUMNS);
    c.extend_from_slice(extra_after);
    c
}

/// Newest last failure first; builds that need a person before the others.
fn by_urgency(rows: &mut [(Build, Option<FailureRecord>)]) {
    rows.sort_by(|(a, fa), (b, fb)| {
        b.needs_intervention
            .cmp(&a.needs_intervention)
            .then_with(|| fb.as_ref().map(|f| f.at).cmp(&fa.as_ref().map(|f| f.at)))
            .then_with(|| a.number.as_str().cmp(b.number.as_str()))
    });
}

/// Failed builds (those that need a person first), with what to run.
pub(super) async fn attention(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut rows = with_last_failure(tx, req, &[BuildStatus::Failed]).await?;
    by_urgency(&mut rows);
    let cols =
        columns(&[("needs_person", Flag), ("attempt", Count), ("failures", Count)], &[("command", Text)]);
    let mut r = Report::new(ReportName::Attention, now, &cols);
    for (b, f) in &rows {
        let mut row = build_cells(b);
        row.extend([Cell::Flag(b.needs_intervention), Cell::count(b.attempt), Cell::count(b.failure_count)]);
        row.extend(failure_cells(f.as_ref()));
        row.push(Cell::Text(retry_command(b)));
        r.push(row);
    }
    r.sum("failed", Cell::count(rows.len()));
    r.sum("needs_person", Cell::count(rows.iter().filter(|(b, _)| b.needs_intervention).count()));
    Ok(r)
}

/// Builds with more than `threshold` failure records, in any status; most first.
pub(super) async fn excessive(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let filter = ReportFilter { more_failures_than: Some(req.threshold), ..req.filter.clone() };
    let mut builds = tx.report_builds(&filter).await?;
    builds.sort_by(|a, b| {
        b.failure_count.cmp(&a.failure_count).then_with(|| a.number.as_str().cmp(b.number.as_str()))
    });
    let failures = if builds.is_empty() { Vec::new() } else { tx.report_failures(&filter).await? };
    let mut last = last_failures(failures);
    let cols = columns(&[("status", Text), ("failures", Count)], &[]);
    let mut r = Report::new(ReportName::ExcessiveFailures, now, &cols);
    for b in &builds {
        let mut row = build_cells(b);
        row.extend([Cell::text(b.status.as_str()), Cell::count(b.failure_count)]);
        row.extend(failure_cells(last.remove(&b.id).as_ref()));
        r.push(row);
    }
    r.sum("threshold", Cell::count(req.threshold));
    Ok(r)
}

/// Failed builds (at `--from`) that a plain retry resumes: not waiting for a person.
pub(super) async fn resumable(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let mut rows = with_last_failure(tx, req, &[BuildStatus::Failed]).await?;
    rows.retain(|(b, _)| !b.needs_intervention && req.from.is_none_or(|s| b.state == s));
    by_urgency(&mut rows);
    let cols = columns(&[("attempt", Count)], &[("command", Text)]);
    let mut r = Report::new(ReportName::Resumable, now, &cols);
    for (b, f) in &rows {
        let mut row = build_cells(b);
        row.push(Cell::count(b.attempt));
        row.extend(failure_cells(f.as_ref()));
        row.push(Cell::Text(retry_command(b)));
        r.push(row);
    }
    if let Some(from) = req.from {
        r.sum("from", Cell::count(from.get()));
    }
    Ok(r)
}

/// Builds to trigger (pending) or re-trigger (failed, not waiting for a person), oldest
/// first, with the CI job that runs them.
pub(super) async fn ready(tx: &mut dyn Tx, req: &ReportRequest, now: Timestamp) -> StoreResult<Report> {
    let Some(filter) = req.filter.narrowed(&[BuildStatus::Pending, BuildStatus::Failed]) else {
        return Ok(Report::new(ReportName::Ready, now, &ready_columns()));
    };
    let mut builds: Vec<Build> =
        tx.report_builds(&filter).await?.into_iter().filter(|b| !b.needs_intervention).collect();
    builds.sort_by_key(|b| (b.created_at, b.id));
    let mut r = Report::new(ReportName::Ready, now, &ready_columns());
    for b in &builds {
        let mut row = build_cells(b);
        let command = match b.status {
            BuildStatus::Failed => retry_command(b),
            _ => format!("buildstate resume {}", b.number),
        };
        row.extend([
            Cell::text(b.status.as_str()),
            Cell::Time(b.created_at),
            Cell::opt_text(b.ci_url.clone()),
            Cell::Text(command),
        ]);
        r.push(row);
    }
    Ok(r)
}

fn ready_columns() -> Vec<(&'static str, super::table::CellKind)> {
    let mut c = BUILD_COLUMNS.to_vec();
    c.extend([("status", Text), ("created_at", Time), ("ci_url", Text), ("command", Text)]);
    c
}
