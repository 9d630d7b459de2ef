//! `report NAME`: the monitoring questions of SPEC §6, answered by the store engine's
//! reports (`buildstate_store::report`) and shown as a table, JSON or CSV.

use buildstate_core::{BuildStatus, CatalogKind, Name, StateCode};
use buildstate_store::report::{
    Cell, CellKind, Column, Report, ReportFilter, ReportName, ReportRequest, cents,
};

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
    #[arg(long, value_parser = since_or_ago, allow_negative_numbers = true)]
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
    /// excessive-failures: more than this many failure records [default: 5]
    #[arg(long, allow_negative_numbers = true)]
    threshold: Option<u32>,
    /// resumable: builds failed at this milestone
    #[arg(long, allow_negative_numbers = true)]
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
        return list(a.format.unwrap_or(if ctx.json { Format::Json } else { Format::Table }));
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
    if a.threshold.is_some() && name != ReportName::ExcessiveFailures {
        return Err(CliError::usage(format!(
            "--threshold is an option of `report excessive-failures`, not of `report {name}`"
        )));
    }
    if ctx.json && a.format.is_some_and(|f| f != Format::Json) {
        return Err(CliError::usage("--json and --format disagree: give one of them"));
    }
    for (kind, name) in [
        (CatalogKind::Platform, a.platform.as_ref()),
        (CatalogKind::Os, a.os.as_ref()),
        (CatalogKind::ImageType, a.image.as_ref()),
    ] {
        if let Some(name) = name {
            known(ctx, kind, name).await?;
        }
    }
    let now = buildstate_store::now();
    let since = a.since.map(|s| s.at(now));
    if let Some(t) = since.filter(|t| *t > now) {
        return Err(CliError::usage(format!(
            "--since {} is in the future: no build was created after it; give a time in the past or how long ago (30d)",
            output::time(t)
        )));
    }
    check_statuses(name, &a.status)?;
    if let Some(p) = &a.pipeline {
        known_pipeline(ctx, p).await?;
    }
    let request = ReportRequest {
        name,
        filter: ReportFilter {
            since,
            platform: a.platform,
            os: a.os,
            image_type: a.image,
            pipeline: a.pipeline,
            statuses: a.status,
            more_failures_than: None,
        },
        threshold: a.threshold.unwrap_or(5),
        from: a.from,
        rates: ctx.cost_rates.clone(),
    };
    let filtered = request.filter != ReportFilter::default();
    let mut report = ctx.store.report(&request).await?;
    if let Some(code) = request.from
        && report.rows.is_empty()
        && !buildstate_core::StateCatalog::default().contains(code)
    {
        // Not a milestone of the default catalog, and no build with a catalog of its own
        // failed there either: most likely a typo.
        return Err(CliError::new(
            crate::exit::Exit::Rejected,
            format!("--from {code} is not a milestone of the default catalog, and no build failed there"),
        )
        .with_hint("the default catalog's milestones are 0, 5, 10, … 100"));
    }
    report.notes.extend(unknown_rates(ctx, &request).await?);
    match a.format.unwrap_or(if ctx.json { Format::Json } else { Format::Table }) {
        Format::Json => output::json(&report),
        Format::Csv => output::raw(report.to_csv().as_bytes()),
        Format::Table if name == ReportName::Matrix => print_matrix(&report, filtered),
        Format::Table => print(&report, filtered),
    }
}

/// The statuses a report shows builds in, if it shows only some: a `--status` outside
/// them selects nothing, which is a mistake worth saying.
fn shown_statuses(name: ReportName) -> Option<&'static [BuildStatus]> {
    use BuildStatus::*;
    match name {
        ReportName::Running | ReportName::Eta => Some(&[Running]),
        ReportName::Attention | ReportName::Resumable => Some(&[Failed]),
        ReportName::Ready => Some(&[Pending, Failed]),
        ReportName::PlatformDurations => Some(&[Completed]),
        _ => None,
    }
}

fn check_statuses(name: ReportName, given: &[BuildStatus]) -> Result<(), CliError> {
    let Some(shown) = shown_statuses(name) else { return Ok(()) };
    if given.is_empty() || given.iter().any(|s| shown.contains(s)) {
        return Ok(());
    }
    let words = |s: &[BuildStatus]| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Err(CliError::usage(format!(
        "report {name} shows {} builds only: --status {} selects none of them",
        words(shown),
        words(given)
    )))
}

/// A `--pipeline` no build was run by is most likely a typo: say so (exit 3) rather
/// than print zeros.
async fn known_pipeline(ctx: &Ctx, pipeline: &str) -> Result<(), CliError> {
    let mut any = ReportRequest::new(ReportName::Overview);
    any.filter.pipeline = Some(pipeline.to_owned());
    let overview = ctx.store.report(&any).await?;
    let total = overview.rows.first().and_then(|row| overview.get(row, "total"));
    if total.is_some_and(|t| *t != buildstate_store::report::Cell::count(0)) {
        return Ok(());
    }
    Err(CliError::not_found(format!("no build was run by pipeline `{}`", output::cell(pipeline, 60)))
        .with_hint("`buildstate build list` shows builds; `buildstate run` records their pipeline"))
}

/// A filter naming a platform, OS or image type the catalog does not have matches
/// nothing: say so (exit 3), with the closest name, rather than print zeros.
async fn known(ctx: &Ctx, kind: CatalogKind, name: &Name) -> Result<(), CliError> {
    let items = ctx.store.catalog(kind).await?;
    if items.iter().any(|i| i.name() == name) {
        return Ok(());
    }
    let names: Vec<String> = items.iter().map(|i| i.name().to_string()).collect();
    let mut e = CliError::not_found(format!("there is no {kind} `{name}` in the catalog"));
    e = match crate::config::closest(name.as_str(), &names) {
        Some(near) => e.with_hint(format!("did you mean `{near}`?")),
        None => e.with_hint(format!("`buildstate {} list` shows them", kind_command(kind))),
    };
    Err(e)
}

fn kind_command(kind: CatalogKind) -> &'static str {
    match kind {
        CatalogKind::Platform => "platform",
        CatalogKind::Os => "os",
        CatalogKind::ImageType => "image-type",
    }
}

/// `[cost]` keys that name no platform of the catalog (a typo prices nothing).
async fn unknown_rates(ctx: &Ctx, request: &ReportRequest) -> Result<Vec<String>, CliError> {
    if request.rates.is_empty() || !matches!(request.name, ReportName::Cost | ReportName::TimeSaved) {
        return Ok(Vec::new());
    }
    let platforms: Vec<String> =
        ctx.store.catalog(CatalogKind::Platform).await?.iter().map(|i| i.name().to_string()).collect();
    Ok(request
        .rates
        .keys()
        .filter(|k| !platforms.contains(k))
        .map(|k| match crate::config::closest(k, &platforms) {
            Some(near) => {
                format!("[cost] names `{k}`, which is not a platform of the catalog; did you mean `{near}`?")
            }
            None => format!("[cost] names `{k}`, which is not a platform of the catalog"),
        })
        .collect())
}

fn list(format: Format) -> Result<(), CliError> {
    if format == Format::Csv {
        let mut out = String::from("report,answers\r\n");
        for n in ReportName::ALL {
            out.push_str(&format!("{},\"{}\"\r\n", n.as_str(), n.about().replace('"', "\"\"")));
        }
        return output::raw(out.as_bytes());
    }
    if format == Format::Json {
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

/// A cell for people: durations as `4m 05s`, times in UTC, messages cut to a line
/// (build numbers and commands whole: they are copied and run).
fn shown(cell: &Cell, col: &Column) -> String {
    match (cell, col.kind) {
        (Cell::Null, _) => "-".to_owned(),
        (Cell::Int(ms), CellKind::Duration) => output::duration((*ms).max(0) as u64),
        (Cell::Cents(c), CellKind::Percent) => format!("{}%", percent(*c)),
        (Cell::Cents(c), _) => cents(*c),
        (Cell::Time(t), _) => output::time(*t),
        (Cell::Flag(b), _) => if *b { "yes" } else { "" }.to_owned(),
        (Cell::Text(s), _) if col.key.ends_with("message") || col.key.ends_with("pattern") => {
            output::cell(&visible(s), 60)
        }
        (Cell::Text(s), _) => visible(s),
        (other, _) => other.plain(),
    }
}

/// A percentage in hundredths with one decimal, as reports round them (`33.3`, `100`).
fn percent(c: i64) -> String {
    let text = cents(c);
    let one = &text[..text.len() - 1];
    one.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Text with the controls that reorder a terminal line (bidirectional overrides and
/// isolates) and every other control character (a tab, a newline) shown as escapes:
/// stored text keeps them, a table must neither obey them nor lose its columns to them.
fn visible(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                c.escape_unicode().to_string()
            }
            c if c.is_control() => c.escape_debug().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn header(key: &str) -> String {
    key.trim_end_matches("_ms").replace('_', " ").to_uppercase()
}

fn nothing(r: &Report, filtered: bool) -> String {
    let under = if filtered { " under these filters" } else { "" };
    format!("nothing for `report {}`{under}", r.name)
}

fn print(r: &Report, filtered: bool) -> Result<(), CliError> {
    if r.rows.is_empty() {
        output::line(nothing(r, filtered))?;
    } else {
        let headers: Vec<String> = r.columns.iter().map(|c| header(&c.key)).collect();
        let mut t = output::table(&headers.iter().map(String::as_str).collect::<Vec<_>>());
        for row in &r.rows {
            t.add_row(row.iter().zip(&r.columns).map(|(c, col)| shown(c, col)).collect::<Vec<_>>());
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
                let kind = if k.ends_with("_ms") { CellKind::Duration } else { CellKind::Count };
                let col = Column { key: k.clone(), kind };
                format!("{}: {}", k.trim_end_matches("_ms").replace('_', " "), shown(v, &col))
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
fn print_matrix(r: &Report, filtered: bool) -> Result<(), CliError> {
    use std::collections::{BTreeMap, BTreeSet};
    if r.rows.is_empty() {
        return output::line(nothing(r, filtered));
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
