//! Charts drawn by the server as SVG: horizontal bars for the reports and a Gantt of a
//! build's attempts. Presentation attributes and classes only (no `style`), so that
//! the pages' Content-Security-Policy needs no inline style; every label is escaped,
//! and each chart has a text title for screen readers (the table beside it has the
//! same figures).

use std::fmt::Write as _;

use buildstate_core::{Attempt, AttemptStatus, StateCatalog};

use super::html::esc;

const WIDTH: f64 = 640.0;
const LABEL: f64 = 180.0;
const ROW: f64 = 22.0;

/// One bar per `(label, value)`, scaled to the largest; `shown` writes a value as the
/// bar's text. Empty data is a chart that says so.
pub fn bars(title: &str, data: &[(String, f64)], shown: &dyn Fn(f64) -> String) -> String {
    if data.is_empty() {
        return format!(
            r#"<svg class="chart" role="img" width="{WIDTH}" height="40" viewBox="0 0 {WIDTH} 40"><title>{t}: no data</title><text x="8" y="24" class="empty">{t}: no data yet</text></svg>"#,
            t = esc(title)
        );
    }
    let max = data.iter().map(|d| d.1).fold(0.0_f64, f64::max);
    let height = ROW * data.len() as f64 + 8.0;
    let mut out = format!(
        r#"<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"><title>{}</title>"#,
        esc(title)
    );
    let room = WIDTH - LABEL - 90.0;
    for (i, (label, v)) in data.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let w = if max > 0.0 && v.is_finite() { (v / max * room).max(1.0) } else { 1.0 };
        let _ = write!(
            out,
            r#"<text x="{tx}" y="{ty}" class="label" text-anchor="end">{l}</text><rect x="{LABEL}" y="{y}" width="{w:.1}" height="{h}" class="bar"></rect><text x="{vx:.1}" y="{ty}" class="value">{v}</text>"#,
            tx = LABEL - 6.0,
            ty = y + 14.0,
            l = esc(label),
            h = ROW - 6.0,
            vx = LABEL + w + 4.0,
            v = esc(&shown(*v)),
        );
    }
    out.push_str("</svg>");
    out
}

/// The attempts of a build on a time axis, one row per attempt (retries are rows of
/// their own, skipped milestones a marked row), coloured and labelled by outcome.
pub fn gantt(catalog: &StateCatalog, attempts: &[Attempt], now: jiff::Timestamp) -> String {
    if attempts.is_empty() {
        return bars("Timeline", &[], &|_| String::new());
    }
    let start = attempts.iter().map(|a| a.started_at).min().unwrap_or(now);
    let end = attempts.iter().map(|a| a.ended_at.unwrap_or(now)).max().unwrap_or(now).max(start);
    let span = ((end.as_millisecond() - start.as_millisecond()) as f64).max(1.0);
    let room = WIDTH - LABEL - 70.0;
    let height = ROW * attempts.len() as f64 + 8.0;
    let mut out = format!(
        r#"<svg class="chart gantt" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"><title>Timeline of {} attempts</title>"#,
        attempts.len()
    );
    for (i, a) in attempts.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let x0 = LABEL + (a.started_at.as_millisecond() - start.as_millisecond()) as f64 / span * room;
        let x1 = LABEL
            + (a.ended_at.unwrap_or(now).as_millisecond() - start.as_millisecond()) as f64 / span * room;
        let status = outcome(a.status);
        let _ = write!(
            out,
            r#"<text x="{tx}" y="{ty}" class="label" text-anchor="end">{code} {name} #{n}</text><rect x="{x0:.1}" y="{y}" width="{w:.1}" height="{h}" class="bar attempt-{status}"><title>{status}</title></rect><text x="{vx:.1}" y="{ty}" class="value">{status}</text>"#,
            tx = LABEL - 6.0,
            ty = y + 14.0,
            code = a.state.get(),
            name = esc(catalog.name_of(a.state)),
            n = a.number,
            h = ROW - 6.0,
            w = (x1 - x0).max(2.0),
            vx = x0 + (x1 - x0).max(2.0) + 4.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// An attempt's outcome as a word (its class and its label).
pub fn outcome(s: AttemptStatus) -> &'static str {
    match s {
        AttemptStatus::Started => "running",
        AttemptStatus::Completed => "completed",
        AttemptStatus::Failed => "failed",
        AttemptStatus::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_data_draws_a_chart_that_says_so() {
        let svg = bars("Success by month", &[], &|v| v.to_string());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("no data"), "{svg}");
        let g = gantt(&StateCatalog::default_catalog(), &[], jiff::Timestamp::UNIX_EPOCH);
        assert!(g.contains("no data"), "{g}");
        // All zeros: bars of the least width, no division by zero.
        let zeros = bars("z", &[("a".into(), 0.0), ("b".into(), 0.0)], &|v| v.to_string());
        assert!(!zeros.contains("NaN") && !zeros.contains("inf"), "{zeros}");
    }

    #[test]
    fn labels_are_escaped() {
        let svg = bars("<t>", &[("<script>x</script>".into(), 1.0)], &|v| v.to_string());
        assert!(!svg.contains("<script>") && !svg.contains("<t>"), "{svg}");
    }
}
