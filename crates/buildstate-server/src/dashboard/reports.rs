//! `GET /reports`: success rate by month, durations per milestone, failures by
//! milestone, time saved by resuming and cost, each as a table and an SVG chart, from
//! the same reports `buildstate report` prints. [`table`] draws any report, and the
//! Running and Attention views use it too.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use buildstate_store::report::{Cell, CellKind, Report, ReportFilter, ReportName, ReportRequest};

use super::charts;
use super::html::{self, esc};
use super::session::Viewer;
use crate::AppState;
use crate::error::ApiError;

/// A report over every build, with the server's rates.
pub async fn compute(state: &AppState, name: ReportName) -> Result<Report, ApiError> {
    let request = ReportRequest {
        name,
        filter: ReportFilter::default(),
        threshold: 5,
        from: None,
        rates: state.options.rates.clone(),
    };
    Ok(state.store.report(&request).await?)
}

/// One cell as people read it.
pub fn cell(kind: CellKind, c: &Cell) -> String {
    match (kind, c) {
        (_, Cell::Null) => String::new(),
        (CellKind::Duration, Cell::Int(ms)) => html::duration((*ms).max(0) as u64),
        (CellKind::Percent, Cell::Cents(v)) => format!("{:.1}%", *v as f64 / 100.0),
        (_, Cell::Time(t)) => html::time(*t),
        (_, Cell::Flag(b)) => (if *b { "yes" } else { "no" }).to_owned(),
        (_, other) => esc(&other.plain()),
    }
}

/// A report as a table; a `build` column links to the build.
pub fn table(r: &Report, caption: &str) -> String {
    if r.rows.is_empty() {
        return format!(r#"<p class="empty">{}: nothing to show yet.</p>"#, esc(caption));
    }
    let mut out = format!(
        r#"<table class="report" data-report="{}"><caption>{}</caption><thead><tr>"#,
        r.name,
        esc(caption)
    );
    for c in &r.columns {
        // A duration's cells read `4m 05s`: its key's unit would mislead.
        let key = if c.kind == CellKind::Duration { c.key.trim_end_matches("_ms") } else { c.key.as_ref() };
        let _ = write!(out, r#"<th scope="col">{}</th>"#, esc(&key.replace('_', " ")));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &r.rows {
        out.push_str("<tr>");
        for (c, v) in r.columns.iter().zip(row) {
            let text = match (c.key.as_ref(), v) {
                ("build", Cell::Text(n)) => html::build_link(n),
                _ => cell(c.kind, v),
            };
            let _ = write!(out, "<td>{text}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// The `(label, value)` pairs of a chart: `labels` joined, the `value` column as a
/// number (hundredths as units, milliseconds as they are).
pub fn series(r: &Report, labels: &[&str], value: &str) -> Vec<(String, f64)> {
    let idx = |key: &str| r.columns.iter().position(|c| c.key == key);
    let Some(v) = idx(value) else { return Vec::new() };
    let label_idx: Vec<usize> = labels.iter().filter_map(|l| idx(l)).collect();
    r.rows
        .iter()
        .filter_map(|row| {
            let n = match row.get(v)? {
                Cell::Int(n) => *n as f64,
                Cell::Cents(c) => *c as f64 / 100.0,
                _ => return None,
            };
            let label = label_idx.iter().map(|&i| row[i].plain()).collect::<Vec<_>>().join(" ");
            Some((label, n))
        })
        .collect()
}

/// What the Reports view shows: the report, its title, the chart's labels and value,
/// and how a value reads.
struct Shown {
    name: ReportName,
    title: &'static str,
    labels: &'static [&'static str],
    value: &'static str,
    unit: fn(f64) -> String,
}

fn percent(v: f64) -> String {
    format!("{v:.1}%")
}

fn millis(v: f64) -> String {
    html::duration(v.max(0.0) as u64)
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn money(v: f64) -> String {
    format!("{v:.2}")
}

const SHOWN: [Shown; 5] = [
    Shown {
        name: ReportName::SuccessRate,
        title: "Success rate by month",
        labels: &["month"],
        value: "success_pct",
        unit: percent,
    },
    Shown {
        name: ReportName::Durations,
        title: "Median duration per milestone",
        labels: &["state", "state_name"],
        value: "p50_ms",
        unit: millis,
    },
    Shown {
        name: ReportName::Failures,
        title: "Failures by milestone and type",
        labels: &["state_name", "failure_type"],
        value: "failures",
        unit: count,
    },
    Shown {
        name: ReportName::TimeSaved,
        title: "Time saved by resuming",
        labels: &["build"],
        value: "saved_ms",
        unit: millis,
    },
    Shown {
        name: ReportName::Cost,
        title: "Cost by platform and milestone band",
        labels: &["platform", "band"],
        value: "cost",
        unit: money,
    },
];

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    let mut body = String::new();
    for s in &SHOWN {
        let r = match compute(&state, s.name).await {
            Ok(r) => r,
            Err(e) => return html::message(e.status, &viewer, "The store cannot be read", &e.message),
        };
        let data = series(&r, s.labels, s.value);
        let _ = write!(
            body,
            r#"<section class="report" id="{name}"><h2>{title}</h2>{chart}{table}</section>"#,
            name = s.name,
            title = esc(s.title),
            chart = charts::bars(s.title, &data, &|v| (s.unit)(v)),
            table = table(&r, s.title),
        );
    }
    html::page(StatusCode::OK, "Reports", "/reports", &viewer, None, &body)
}
