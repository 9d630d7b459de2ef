//! `wait REF --until CODE|delivered` and `wait --all --pipeline P --until CODE`: blocks
//! until builds reach a milestone (exit 0), one of them never will (exit 8: failed with
//! nobody to retry it, needs a person, cancelled) or the timeout passes (exit 124), so
//! that a CI job can gate on another job's build — publish only after every platform's
//! tests passed. The decision is `buildstate_core::gate`; this file only polls.

use std::path::Path;
use std::time::{Duration, Instant};

use buildstate_core::{Build, Gate, Name, Until, gate};
use buildstate_runner::dispatch::{build_of_cell, builds_of};
use buildstate_runner::pipeline::{MatrixCell, MatrixFilter, Pipeline};
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::output;

/// `timeout(1)`'s code, which CI engines and scripts already read as "timed out".
const TIMED_OUT: u8 = 124;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build id, build number, or a unique prefix of either (or --all --pipeline P)
    reference: Option<String>,
    /// A milestone code (done: completed or skipped) or `delivered`
    #[arg(long, value_name = "CODE|delivered")]
    until: Until,
    /// Every build of the pipeline (with --pipeline)
    #[arg(long, requires = "pipeline", conflicts_with = "reference")]
    all: bool,
    /// The pipeline: its file (its matrix names the builds, created yet or not) or its name
    #[arg(long, value_name = "FILE|NAME", requires = "all")]
    pipeline: Option<String>,
    /// With --all: only matrix cells matching KEY=VALUE[,KEY=VALUE…] (as `run --only`)
    #[arg(long, value_name = "FILTER", requires = "all")]
    only: Vec<String>,
    /// Give up after this long (exit 124) [default: wait as long as it takes]
    #[arg(long, value_name = "DURATION", value_parser = super::run::parse_duration)]
    timeout: Option<Duration>,
    /// How often the store is asked
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = interval)]
    interval: Duration,
}

fn interval(s: &str) -> Result<Duration, String> {
    let d = super::run::parse_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!("{s} is outside 100ms … 1h"));
    }
    Ok(d)
}

/// What is waited for: one build, or a pipeline's cells.
enum Subject {
    One(String),
    /// A pipeline file: its cells, whose builds may not exist yet.
    Cells(Name, Vec<MatrixCell>),
    /// A pipeline by name: the builds on record for it.
    Named(Name),
}

/// One build's standing, as printed.
#[derive(Clone, Debug, Serialize)]
struct Standing {
    build: String,
    cell: String,
    state: Option<u8>,
    status: Option<String>,
    reached: bool,
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    let subject = subject(&a)?;
    let started = Instant::now();
    let mut last_said: Vec<String> = Vec::new();
    let mut store_down = false;
    let mut last_round: Option<Vec<Standing>> = None;
    loop {
        let round = match poll(ctx, &subject, a.until).await {
            Ok(r) => {
                if store_down {
                    output::notice("the store answers again");
                    store_down = false;
                }
                Some(r)
            }
            // A store that is busy or away for a moment while waiting is not the build's
            // failure: said once, and waited through (the timeout still holds). Before
            // anything was seen, and for any other error, it is the user's to fix.
            Err(e) if e.exit == Exit::Unavailable && !last_said.is_empty() => {
                if !store_down {
                    output::warning(format!("{e}; still waiting"));
                    store_down = true;
                }
                None
            }
            Err(e) => return Err(e),
        };
        if let Some((standings, never)) = round {
            if let Some(why) = never {
                report(ctx, &standings)?;
                return Err(CliError::new(Exit::Undelivered, format!("{why}: it will not reach {}", a.until))
                    .with_hint("`buildstate resume REF` says what it needs; `buildstate retry REF` re-opens a failed build"));
            }
            if standings.iter().all(|s| s.reached) {
                report(ctx, &standings)?;
                return Ok(Exit::Ok);
            }
            let said: Vec<String> = standings.iter().map(describe).collect();
            for line in said.iter().filter(|l| !last_said.contains(l)) {
                output::notice(format!("waiting for {}: {line}", a.until));
            }
            last_said = said;
            last_round = Some(standings);
        }
        if let Some(limit) = a.timeout
            && started.elapsed() >= limit
        {
            // `--json` readers learn where each build is, as on any other end.
            if ctx.json
                && let Some(standings) = &last_round
            {
                report(ctx, standings)?;
            }
            let pending: Vec<&String> = last_said.iter().filter(|l| !l.ends_with("reached")).collect();
            return Err(CliError::new(
                Exit::Passthrough(TIMED_OUT),
                format!(
                    "timed out after {} waiting for {}: {}",
                    humantime(limit),
                    a.until,
                    pending.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
                ),
            ));
        }
        let left = a.timeout.map_or(a.interval, |t| t.saturating_sub(started.elapsed()).min(a.interval));
        tokio::time::sleep(left.max(Duration::from_millis(10))).await;
    }
}

fn subject(a: &Args) -> Result<Subject, CliError> {
    if !a.all {
        return a.reference.clone().map(Subject::One).ok_or_else(|| {
            CliError::usage("say which build to wait for: `buildstate wait REF --until CODE`").with_hint(
                "or every build of a pipeline: `buildstate wait --all --pipeline FILE --until CODE`",
            )
        });
    }
    let given = a.pipeline.as_deref().unwrap_or_default();
    let filter = MatrixFilter::parse(&a.only).map_err(|e| CliError::usage(e.to_string()))?;
    let path = Path::new(given);
    if path.is_file() || given.ends_with(".yaml") || given.ends_with(".yml") {
        let p = Pipeline::load(path).map_err(|e| CliError::usage(e.to_string()))?;
        // Known before any build exists: a code the file's catalog lacks never comes.
        if let Until::Milestone(code) = a.until
            && !p.catalog.contains(code)
        {
            return Err(CliError::usage(format!("milestone {code} is not in pipeline {}'s catalog", p.name))
                .with_hint("wait for one of its milestones, or for delivered"));
        }
        let cells: Vec<MatrixCell> = p.cells(&filter).into_iter().cloned().collect();
        if cells.is_empty() {
            return Err(CliError::usage(format!("--only {} selects no cell of pipeline {}", filter, p.name)));
        }
        return Ok(Subject::Cells(p.name, cells));
    }
    if !a.only.is_empty() {
        return Err(CliError::usage("--only needs the pipeline's file, which holds its matrix")
            .with_hint("pass --pipeline FILE"));
    }
    let name = Name::new(given).map_err(|e| {
        CliError::usage(format!("--pipeline {given}: not a pipeline file, nor a pipeline name ({e})"))
    })?;
    Ok(Subject::Named(name))
}

/// One look at the store: every build's standing, and why one never will, if one won't.
async fn poll(
    ctx: &Ctx,
    subject: &Subject,
    until: Until,
) -> Result<(Vec<Standing>, Option<String>), CliError> {
    let builds: Vec<(String, Option<Build>)> = match subject {
        Subject::One(r) => {
            let b = ctx.find(r).await?;
            vec![(cell_of(&b), Some(b))]
        }
        Subject::Cells(name, cells) => {
            let mut out = Vec::new();
            for cell in cells {
                let b = build_of_cell(ctx.store.as_ref(), name, cell).await.map_err(CliError::from)?;
                out.push((cell.to_string(), b));
            }
            out
        }
        Subject::Named(name) => {
            let found = builds_of(ctx.store.as_ref(), name).await.map_err(CliError::from)?;
            if found.is_empty() {
                return Err(CliError::new(Exit::NotFound, format!("no build of pipeline {name} is on record"))
                    .with_hint("check the name (`buildstate build list` shows builds' pipeline metadata), or pass the pipeline's file to wait for builds not created yet"));
            }
            found.into_iter().map(|b| (cell_of(&b), Some(b))).collect()
        }
    };
    if let Until::Milestone(code) = until
        && let Some(b) = builds.iter().filter_map(|(_, b)| b.as_ref()).find(|b| !b.catalog.contains(code))
    {
        return Err(CliError::usage(format!("milestone {code} is not in the catalog of build {}", b.number))
            .with_hint(
                "`buildstate build show REF` lists its milestones; wait for one of them, or for delivered",
            ));
    }
    // Leases are read only when they decide something: a failed build a runner may retry.
    let held = if builds
        .iter()
        .any(|(_, b)| b.as_ref().is_some_and(|b| b.status == buildstate_core::BuildStatus::Failed))
    {
        let now = buildstate_store::now();
        ctx.store
            .leases()
            .await
            .map_err(CliError::from)?
            .into_iter()
            .filter(|l| !l.is_expired(now))
            .map(|l| l.build_id)
            .collect()
    } else {
        Vec::new()
    };
    let mut never = None;
    let mut standings = Vec::new();
    for (cell, b) in builds {
        let Some(b) = b else {
            standings.push(Standing { build: "-".into(), cell, state: None, status: None, reached: false });
            continue;
        };
        let g = gate(&b, until, held.contains(&b.id));
        if let Gate::Never(why) = &g {
            never.get_or_insert_with(|| why.clone());
        }
        standings.push(Standing {
            build: b.number.to_string(),
            cell,
            state: Some(b.state.get()),
            status: Some(b.status.to_string()),
            reached: g == Gate::Reached,
        });
    }
    Ok((standings, never))
}

fn cell_of(b: &Build) -> String {
    format!("{}/{}/{}", b.platform, b.os, b.image_type)
}

fn describe(s: &Standing) -> String {
    match (s.state, &s.status) {
        _ if s.reached => format!("build {} ({}) reached", s.build, s.cell),
        (Some(state), Some(status)) => format!("build {} ({}) is at {state}, {status}", s.build, s.cell),
        _ => format!("{} has no build yet", s.cell),
    }
}

fn report(ctx: &Ctx, standings: &[Standing]) -> Result<(), CliError> {
    if ctx.json {
        return output::json(&standings);
    }
    for s in standings {
        output::line(describe(s))?;
    }
    Ok(())
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=119 => format!("{s}s"),
        _ => format!("{}m{:02}s", s / 60, s % 60),
    }
}
