//! `demo`: the main job in thirty seconds, on a fresh machine with nothing but this
//! binary. Writes a small pipeline (2 OS × 3 platforms, all 21 milestones) into a
//! scratch directory and runs it on a scratch SQLite store: one step fails transiently
//! once and is retried, one build fails for good at 45 while the others deliver; then
//! the cause is fixed, the pipeline re-run, and only the failed milestone and those after
//! it run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{CatalogItem, ImageType, Name, OsVersion, Platform, StateCatalog};
use buildstate_runner::dispatch::{LeaseTtl, RunOptions, RunSummary};
use buildstate_runner::pipeline::{MatrixFilter, Pipeline};
use buildstate_sqlite::SqliteStore;
use buildstate_store::StoreError;

use super::run::{execute, print_summary};
use crate::cli::Ctx;
use crate::exit::{CliError, Exit, io_error};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scratch directory [default: <temp dir>/buildstate-demo]; emptied first if an
    /// earlier demo made it
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Builds to run at the same time
    #[arg(long, short = 'j', default_value_t = 3)]
    jobs: usize,
}

const MARKER: &str = ".buildstate-demo";
const PLATFORMS: [(&str, &str, &str); 3] =
    [("aws-commercial", "aws", "us-east-1"), ("azure", "azure", "eastus"), ("gcp", "gcp", "us-central1")];
const OSES: [(&str, &str, u32, u32); 2] = [("rhel-9.6", "rhel", 9, 6), ("ubuntu-24.04", "ubuntu", 24, 4)];
/// The build that fails for good, at this milestone, until the cause is fixed.
const BROKEN: (&str, &str, u8) = ("gcp", "ubuntu-24.04", 45);

const STEP_SCRIPT: &str = r#"#!/bin/sh
# One milestone of the demo pipeline. It logs what it did to side-effects.log, so that
# the demo can show which milestones ran again after the fix.
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
echo "$BUILDSTATE_BUILD $BUILDSTATE_STATE $BUILDSTATE_ATTEMPT" >> "$here/side-effects.log"
echo "$BUILDSTATE_STATE_NAME for $BUILDSTATE_OS on $BUILDSTATE_PLATFORM, attempt $BUILDSTATE_ATTEMPT"
case "$BUILDSTATE_STATE/$BUILDSTATE_PLATFORM/$BUILDSTATE_OS" in
  20/azure/rhel-9.6)
    # A flaky mirror: the first attempt fails with a transient error, the retry works.
    if [ ! -e "$here/state/mirror-$BUILDSTATE_BUILD" ]; then
      touch "$here/state/mirror-$BUILDSTATE_BUILD"
      echo "curl: (6) Could not resolve host: packages.microsoft.com" >&2
      exit 75
    fi ;;
  45/gcp/ubuntu-24.04)
    # A real bug: fails every time until someone fixes it (the demo creates state/fixed).
    if [ ! -e "$here/state/fixed" ]; then
      echo "TASK [storage : create LVM volume group] fatal: /dev/sdb not found (the gcp machine type has no second disk)" >&2
      exit 2
    fi ;;
esac
sleep 0.1
"#;

fn pipeline_yaml() -> String {
    let mut y = String::from(
        "# The demo pipeline: every milestone of the default catalog runs steps/step.sh.\n\
         name: demo\n\
         catalog: default\n\
         matrix:\n  platform: [aws-commercial, azure, gcp]\n  os: [rhel-9.6, ubuntu-24.04]\n  image: [base]\n\
         defaults:\n  timeout: 1m\n  retry:\n    max_attempts: 3\n    backoff: {kind: fixed, delay: 300ms}\n\
         \x20   transient: {exit_codes: [75], output_patterns: [\"Could not resolve host\"]}\n\
         states:\n",
    );
    for m in StateCatalog::default_catalog().milestones() {
        y.push_str(&format!("  {}: {{script: steps/step.sh}}   # {} ({})\n", m.code, m.name, m.tool));
    }
    y
}

/// Runs on a scratch store of its own: the store `--db` names is not opened (nor created).
pub async fn run(a: Args) -> Result<Exit, CliError> {
    let began = Instant::now();
    let dir = a.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("buildstate-demo"));
    prepare(&dir)?;
    let db_path = dir.join("buildstate.db");
    let store = SqliteStore::open(&db_path)?;
    seed(&store).await?;
    let demo = Ctx {
        schema_version: store.schema_version(),
        store: Arc::new(store),
        db_path: db_path.clone(),
        location: db_path.display().to_string(),
        step_db: db_path.display().to_string(),
        json: false,
        actor: "demo".to_owned(),
        guard: buildstate_store::Guard::none(),
        syncer: None,
        cost_rates: Default::default(),
    };
    let pipeline =
        Arc::new(Pipeline::load(&dir.join("pipeline.yaml")).map_err(|e| CliError::internal(e.to_string()))?);
    let opts = RunOptions {
        filter: MatrixFilter::all(),
        jobs: a.jobs.max(1),
        build: None,
        fresh: false,
        actor: "demo".to_owned(),
        lease_ttl: LeaseTtl::new(Duration::from_secs(10))?,
        logs_dir: dir.join("logs"),
        grace: Duration::from_secs(2),
        store_location: db_path.display().to_string(),
        through: None,
        ci_url: None,
    };

    heading(&format!("buildstate demo — scratch directory {}", dir.display()))?;
    output::line(
        "A pipeline of 21 milestones for 2 OS × 3 platforms. The azure/rhel-9.6 build meets a flaky\n\
         mirror at 20 (transient: retried); the gcp/ubuntu-24.04 build hits a real bug at 45.",
    )?;
    heading("Run 1")?;
    let first = execute(&demo, pipeline.clone(), opts.clone()).await?;
    print_summary(&demo, &first)?;
    if first.interrupted.is_some() {
        return Ok(super::run::exit_for(&first));
    }

    heading("Fixing the cause (the storage role now checks for the disk) and running the pipeline again")?;
    write(&dir.join("state/fixed"), "fixed\n")?;
    let second = execute(&demo, pipeline.clone(), opts).await?;
    print_summary(&demo, &second)?;

    heading("What the re-run did")?;
    explain_rerun(&dir, &first, &second)?;
    heading("The matrix")?;
    matrix(&second)?;
    heading("Explore")?;
    let broken = broken_build(&second).unwrap_or_else(|| "BUILD".to_owned());
    output::line(format!(
        "  export BUILDSTATE_DB={db}\n  buildstate build list\n  buildstate build show {broken}\n  buildstate history {broken}\n  buildstate logs {broken} --state 45 --attempt 1\n  buildstate failure list\n  buildstate run {pipeline} --new     # fresh builds of the same pipeline",
        db = db_path.display(),
        pipeline = dir.join("pipeline.yaml").display(),
    ))?;
    output::line(format!("\ndemo finished in {}", output::duration(began.elapsed().as_millis() as u64)))?;
    Ok(super::run::exit_for(&second))
}

fn heading(text: &str) -> Result<(), CliError> {
    output::line(format!("\n== {text}\n"))
}

/// Empties the scratch directory if an earlier demo made it; refuses any other
/// non-empty directory rather than delete someone's files.
fn prepare(dir: &Path) -> Result<(), CliError> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !ours && !empty {
            return Err(CliError::usage(format!(
                "{} exists and was not made by `buildstate demo`; choose another --dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(|e| io_error("empty the demo directory", &e))?;
    }
    write(&dir.join(MARKER), "made by `buildstate demo`; deleted by the next one\n")?;
    write(&dir.join("pipeline.yaml"), &pipeline_yaml())?;
    let script = dir.join("steps/step.sh");
    write(&script, STEP_SCRIPT)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io_error("make the step script executable", &e))?;
    std::fs::create_dir_all(dir.join("state")).map_err(|e| io_error("create the demo directory", &e))
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error("create the demo directory", &e))?;
    }
    std::fs::write(path, text).map_err(|e| io_error("write a demo file", &e))
}

fn name(s: &str) -> Result<Name, CliError> {
    Name::new(s).map_err(|e| CliError::internal(e.to_string()))
}

async fn seed(store: &SqliteStore) -> Result<(), CliError> {
    use buildstate_store::Store;
    let mut items = Vec::new();
    for (p, provider, region) in PLATFORMS {
        items.push(CatalogItem::Platform(Platform {
            name: name(p)?,
            display_name: p.to_owned(),
            provider: provider.to_owned(),
            region: Some(region.to_owned()),
        }));
    }
    for (o, family, major, minor) in OSES {
        items.push(CatalogItem::Os(OsVersion {
            name: name(o)?,
            display_name: o.to_owned(),
            family: family.to_owned(),
            major,
            minor: Some(minor),
        }));
    }
    items.push(CatalogItem::ImageType(ImageType {
        name: name("base")?,
        display_name: "Base".to_owned(),
        description: "hardened base image".to_owned(),
    }));
    for item in &items {
        match store.add_catalog_item(item).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn broken_build(summary: &RunSummary) -> Option<String> {
    summary
        .outcomes
        .iter()
        .find(|o| o.cell.platform.as_str() == BROKEN.0 && o.cell.os.as_str() == BROKEN.1)
        .and_then(|o| o.number.as_ref().map(|n| n.to_string()))
}

/// Reads side-effects.log: which milestones of the broken build ran in which run.
fn explain_rerun(dir: &Path, first: &RunSummary, second: &RunSummary) -> Result<(), CliError> {
    let Some(broken) = broken_build(second) else { return Ok(()) };
    let log = std::fs::read_to_string(dir.join("side-effects.log"))
        .map_err(|e| io_error("read side-effects.log", &e))?;
    let mut runs: BTreeMap<u8, u32> = BTreeMap::new();
    for line in log.lines() {
        let mut f = line.split_whitespace();
        if f.next() == Some(broken.as_str())
            && let Some(code) = f.next().and_then(|c| c.parse::<u8>().ok())
        {
            *runs.entry(code).or_insert(0) += 1;
        }
    }
    let below = runs.iter().filter(|(c, _)| **c < BROKEN.2).all(|(_, n)| *n == 1);
    let again: Vec<String> =
        runs.iter().filter(|(c, _)| **c >= BROKEN.2).map(|(c, _)| c.to_string()).collect();
    let outcome = second.outcomes.iter().find(|o| o.number.as_ref().is_some_and(|n| n.as_str() == broken));
    let first_time: Duration = first.outcomes.iter().map(|o| o.elapsed).sum();
    output::line(format!("{broken} failed at {} in run 1 and resumed there in run 2.", BROKEN.2))?;
    output::line(format!(
        "side-effects.log: milestones 0–{} ran exactly once in all ({}); run 2 executed only {} — {} of 21 milestones.",
        BROKEN.2 - 5,
        if below { "none was repeated" } else { "SOME WERE REPEATED" },
        again.join(", "),
        again.len()
    ))?;
    if let Some(o) = outcome {
        output::line(format!(
            "Resuming skipped {} milestones that had taken {} of recorded work (run 1 took {} of build time in all).",
            o.done_before,
            output::duration(o.saved.as_millis() as u64),
            output::duration(first_time.as_millis() as u64)
        ))?;
    }
    Ok(())
}

fn matrix(summary: &RunSummary) -> Result<(), CliError> {
    let mut header = vec!["OS \\ PLATFORM"];
    header.extend(PLATFORMS.iter().map(|(p, _, _)| *p));
    let mut t = output::table(&header);
    for (os, ..) in OSES {
        let mut row = vec![os.to_owned()];
        for (p, ..) in PLATFORMS {
            let cell = summary
                .outcomes
                .iter()
                .find(|o| o.cell.os.as_str() == os && o.cell.platform.as_str() == p)
                .map_or_else(
                    || "-".to_owned(),
                    |o| match o.status {
                        Some(s) if o.delivered() => format!("{} {s}", o.state),
                        Some(s) => format!("{} {s}", o.state),
                        None => "-".to_owned(),
                    },
                );
            row.push(cell);
        }
        t.add_row(row);
    }
    output::print_table(&t)
}
