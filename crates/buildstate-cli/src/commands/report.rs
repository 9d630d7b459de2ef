//! `report NAME`: the monitoring questions of SPEC §6, answered by the store engine's
//! reports (`buildstate_store::report`) and shown as a table, JSON or CSV.

use buildstate_core::{BuildStatus, Name, StateCode};
use buildstate_store::report::{Cell, CellKind, Report, ReportFilter, ReportName, ReportRequest, cents};

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::input::{Since, since_or_ago};
use crate::output;

#[derive(Debug, clap::Args)]
#[command(after_help = after_help())]
pub struct Args {
    /// The report: overview, matrix, running, attention, … (`--list` shows them all)
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the reports and what each answers
    #[arg(long, conflicts_with = "name")]
    list: bool,
    /// Builds created since a time (2026-02-12, 2026-02-12T10:00:00Z) or for how long (90d, 2w, 36h)
    #[arg(long, value_parser = since_or_ago)]
    since: Option<Since>,
    #[arg(long)]
    platform: Option<Name>,
    #[arg(long)]
    os: Option<Name>,
    /// Image type
    #[arg(long)]
    image: Option<Name>,
    /// Builds of this pipeline (the `pipeline` metadata `buildstate run` records)
    #[arg(long)]
    pipeline: Option<String>,
    /// Builds in these statuses (comma-separated or repeated)
    #[arg(long, value_delimiter = ',')]
    status: Vec<BuildStatus>,
    /// excessive-failures: more than this many failure records
    #[arg(long, default_value_t = 5)]
    threshold: u32,
    /// resumable: builds failed at this milestone
    #[arg(long)]
    from: Option<StateCode>,
    /// table (default), json or csv; --json is the same as --format json
    #[arg(long, value_enum)]
    format: Option<Format>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

fn after_help() -> String {
    let mut s = String::from("Reports:\n");
    for n in ReportName::ALL {
        s.push_str(&format!("  {:<19} {}\n", n.as_str(), n.about()));
    }
    s
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    if a.list {
        return list(ctx.json);
    }
    let raw = a.name.as_deref().unwrap_or_default();
    let name: ReportName = raw.parse().map_err(|e: String| {
        CliError::usage(e).with_hint("`buildstate report --list` says what each report answers")
    })?;
    if a.from.is_some() && name != ReportName::Resumable {
        return Err(CliError::usage(format!(
            "--from is an option of `report resumable`, not of `report {name}`"
        )));
    }
    let now = buildstate_store::now();
    let request = ReportRequest {
        name,
        filter: ReportFilter {
            since: a.since.map(|s| s.at(now)),
            platform: a.platform,
            os: a.os,
            image_type: a.image,
            pipeline: a.pipeline,
            statuses: a.status,
            more_failures_than: None,
        },
        threshold: a.threshold,
        from: a.from,
        rates: ctx.cost_rates.clone(),
    };
    let report = ctx.store.report(&request).await?;
    match a.format.unwrap_or(if ctx.json { Format::Json } else { Format::Table }) {
        Format::Json => output::json(&report),
        Format::Csv => output::raw(report.to_csv().as_bytes()),
        Format::Table if name == ReportName::Matrix => print_matrix(&report),
        Format::Table => print(&report),
    }
}

fn list(json: bool) -> Result<(), CliError> {
    if json {
        let all: Vec<serde_json::Value> = ReportName::ALL
            .iter()
            .map(|n| serde_json::json!({"name": n.as_str(), "answers": n.about()}))
            .collect();
        return output::json(&all);
    }
    let mut t = output::table(&["REPORT", "ANSWERS"]);
    for n in ReportName::ALL {
        t.add_row(vec![n.as_str(), n.about()]);
    }
    output::print_table(&t)
}

/// A cell for people: durations as `4m 05s`, times in UTC, text cut to a line.
fn shown(cell: &Cell, kind: CellKind) -> String {
    match (cell, kind) {
        (Cell::Null, _) => "-".to_owned(),
        (Cell::Int(ms), CellKind::Duration) => output::duration((*ms).max(0) as u64),
        (Cell::Cents(c), CellKind::Percent) => {
            format!("{}%", cents(*c).trim_end_matches('0').trim_end_matches('.'))
        }
        (Cell::Cents(c), _) => cents(*c),
        (Cell::Time(t), _) => output::time(*t),
        (Cell::Flag(b), _) => if *b { "yes" } else { "" }.to_owned(),
        (Cell::Text(s), _) => output::cell(s, 60),
        (other, _) => other.plain(),
    }
}

fn header(key: &str) -> String {
    key.trim_end_matches("_ms").replace('_', " ").to_uppercase()
}

fn print(r: &Report) -> Result<(), CliError> {
    if r.rows.is_empty() {
        output::line(format!("no builds for `report {}` (under the filters given)", r.name))?;
    } else {
        let headers: Vec<String> = r.columns.iter().map(|c| header(c.key)).collect();
        let mut t = output::table(&headers.iter().map(String::as_str).collect::<Vec<_>>());
        for row in &r.rows {
            t.add_row(row.iter().zip(&r.columns).map(|(c, col)| shown(c, col.kind)).collect::<Vec<_>>());
        }
        output::print_table(&t)?;
    }
    print_footer(r)
}

fn print_footer(r: &Report) -> Result<(), CliError> {
    if !r.summary.is_empty() {
        let parts: Vec<String> = r
            .summary
            .iter()
            .map(|(k, v)| {
                let kind = match *k {
                    k if k.ends_with("_ms") => CellKind::Duration,
                    _ => CellKind::Count,
                };
                format!("{}: {}", k.trim_end_matches("_ms").replace('_', " "), shown(v, kind))
            })
            .collect();
        output::line(format!("\n{}", parts.join(" · ")))?;
    }
    for n in &r.notes {
        output::line(format!("note: {n}"))?;
    }
    Ok(())
}

/// The matrix as people look at it: per image type, OS versions down, platforms across,
/// each cell the latest build's milestone and status.
fn print_matrix(r: &Report) -> Result<(), CliError> {
    use std::collections::{BTreeMap, BTreeSet};
    if r.rows.is_empty() {
        return output::line("no builds for `report matrix` (under the filters given)");
    }
    let text = |row: &[Cell], key: &str| r.get(row, key).map(Cell::plain).unwrap_or_default();
    let mut images: BTreeMap<String, Vec<&Vec<Cell>>> = BTreeMap::new();
    for row in &r.rows {
        images.entry(text(row, "image_type")).or_default().push(row);
    }
    for (n, (image, rows)) in images.iter().enumerate() {
        if n > 0 {
            output::line("")?;
        }
        output::line(format!("image type {image}:"))?;
        let platforms: BTreeSet<String> = rows.iter().map(|r| text(r, "platform")).collect();
        let mut header = vec!["OS".to_owned()];
        header.extend(platforms.iter().map(|p| p.to_uppercase()));
        let mut t = output::table(&header.iter().map(String::as_str).collect::<Vec<_>>());
        let mut by_os: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for row in rows {
            let person = if text(row, "needs_person") == "true" { " !" } else { "" };
            let cell = format!("{} {}{person}", text(row, "state"), text(row, "status"));
            by_os.entry(text(row, "os")).or_default().insert(text(row, "platform"), cell);
        }
        for (os, cells) in by_os {
            let mut line = vec![os];
            line.extend(platforms.iter().map(|p| cells.get(p).cloned().unwrap_or_else(|| "-".to_owned())));
            t.add_row(line);
        }
        output::print_table(&t)?;
    }
    output::line("\n(the latest build of each cell: milestone and status; ! needs a person)")
}
