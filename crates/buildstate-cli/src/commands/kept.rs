//! `kept list|reap`: cloud resources a failed Packer run left running on purpose
//! (`buildstate packer --keep-on-failure 4h`), and their clean-up once they expire.
//!
//! Packer's `-on-error=abort` keeps a failed builder's VM for debugging but never
//! deletes it, so every kept VM is recorded on its build as metadata `kept.<n>`: a
//! JSON value `{cloud, id, region?, expires_at, cleanup, reaping_since?, reaping_until?,
//! reaped_at?, reap_exit?, reap_output?}` (no schema change; metadata can be written in every
//! status). `reap` runs each expired one's clean-up command once: a success sets `reaped_at` and it is
//! never run again; a failure is recorded and tried again at the next `reap`, since the
//! resource is still there.

use std::time::Duration;

use buildstate_core::{Build, Command, MetaKey, MetaValue};
use buildstate_store::{BuildFilter, Guard, Store};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::run::parse_duration;
use crate::cli::Ctx;
use crate::exit::{CliError, Exit};
use crate::output;

/// Metadata keys of kept resources start with this.
pub const KEY_PREFIX: &str = "kept.";

/// A clean-up's output is kept to this many bytes (its end): metadata values hold 4 KiB.
const OUTPUT_TAIL: usize = 512;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// List kept resources not yet cleaned up (--all: also those reaped)
    List {
        #[arg(long)]
        all: bool,
    },
    /// Run the clean-up command of every expired kept resource; exit 1 if one failed
    Reap {
        /// Only say what would be cleaned up
        #[arg(long)]
        dry_run: bool,
        /// Kill a clean-up command that runs longer than this
        #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
        timeout: Duration,
    },
}

/// One kept resource, as stored in `kept.<n>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub cloud: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub expires_at: Timestamp,
    /// The clean-up command, placeholders already filled in; run with `sh -c`.
    pub cleanup: String,
    /// A `reap` is running the clean-up since then (cleared when it is recorded): a
    /// second `reap` meanwhile leaves it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaping_since: Option<Timestamp>,
    /// The claiming reap's own deadline (claimed at + its `--timeout` + a margin): until
    /// then the claim stands, whatever `--timeout` a second reap was given; after it the
    /// claimer is presumed dead and the clean-up is run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaping_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reap_exit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reap_output: Option<String>,
}

/// The clean-up command of a cloud's VMs when `--cleanup` is not given; none for the
/// `null` builder and other local builders, whose "resource" only the template knows.
pub fn default_cleanup(cloud: &str) -> Option<&'static str> {
    match cloud {
        "aws" => Some("aws ec2 terminate-instances --instance-ids {id}"),
        "azure" => Some("az group delete --yes --name {id}"),
        "gcp" => Some("gcloud compute instances delete --quiet {id}"),
        "openstack" => Some("openstack server delete {id}"),
        _ => None,
    }
}

/// Fills `{id}`, `{cloud}`, `{region}` and `{build}` in, each shell-quoted: ids come
/// from Packer's output and must never run as shell text.
pub fn render(template: &str, id: &str, cloud: &str, region: Option<&str>, build: &str) -> String {
    template
        .replace("{id}", &quote(id))
        .replace("{cloud}", &quote(cloud))
        .replace("{region}", &quote(region.unwrap_or("")))
        .replace("{build}", &quote(build))
}

/// `s` as one shell word: as is when it is plainly safe, else single-quoted.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '='))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Records `kept` on `build` under the next free `kept.<n>`.
pub async fn record(
    store: &dyn Store,
    build: &Build,
    kept: &Kept,
    guard: Guard,
) -> Result<MetaKey, CliError> {
    let n = entries(build).iter().map(|(_, n, _)| *n).max().unwrap_or(0) + 1;
    let key = meta_key(n)?;
    write(store, build, &key, kept, guard).await?;
    Ok(key)
}

fn meta_key(n: u32) -> Result<MetaKey, CliError> {
    MetaKey::new(&format!("{KEY_PREFIX}{n}")).map_err(|e| CliError::internal(e.to_string()))
}

async fn write(
    store: &dyn Store,
    build: &Build,
    key: &MetaKey,
    kept: &Kept,
    guard: Guard,
) -> Result<Build, CliError> {
    let json = serde_json::to_string(kept).map_err(|e| CliError::internal(e.to_string()))?;
    let value = MetaValue::new(key, &json).map_err(|e| CliError::internal(e.to_string()))?;
    let cmd = Command::SetMeta { key: key.clone(), value: Some(value) };
    Ok(store.apply(build.id, &cmd, guard).await?.build)
}

/// The build's kept resources: key, number, and the entry (or why it does not read).
pub fn entries(build: &Build) -> Vec<(MetaKey, u32, Result<Kept, String>)> {
    build
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            let n: u32 = k.as_str().strip_prefix(KEY_PREFIX)?.parse().ok()?;
            let kept = serde_json::from_str::<Kept>(v.as_str()).map_err(|e| e.to_string());
            Some((k.clone(), n, kept))
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct Row {
    build: String,
    key: String,
    #[serde(flatten)]
    kept: Kept,
    status: &'static str,
}

fn status(kept: &Kept, now: Timestamp) -> &'static str {
    match (kept.reaped_at, kept.reap_exit) {
        (Some(_), _) => "reaped",
        (None, _) if kept.reaping_since.is_some() => "reaping",
        (None, Some(_)) => "reap failed",
        (None, None) if kept.expires_at <= now => "expired",
        (None, None) => "kept",
    }
}

async fn all_rows(ctx: &Ctx, all: bool) -> Result<Vec<(Build, Row)>, CliError> {
    let now = buildstate_store::now();
    let mut rows = Vec::new();
    for b in ctx.store.list_builds(&BuildFilter::default()).await? {
        for (key, _, kept) in entries(&b) {
            match kept {
                Ok(kept) if all || kept.reaped_at.is_none() => {
                    let status = status(&kept, now);
                    rows.push((
                        b.clone(),
                        Row { build: b.number.to_string(), key: key.to_string(), kept, status },
                    ));
                }
                Ok(_) => {}
                Err(why) => output::warning(format!(
                    "build {}: {key} does not read as a kept resource: {why}",
                    b.number
                )),
            }
        }
    }
    Ok(rows)
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<Exit, CliError> {
    match args {
        Args::List { all } => list(ctx, all).await.map(|()| Exit::Ok),
        Args::Reap { dry_run, timeout } => reap(ctx, dry_run, timeout).await,
    }
}

async fn list(ctx: &Ctx, all: bool) -> Result<(), CliError> {
    let rows: Vec<Row> = all_rows(ctx, all).await?.into_iter().map(|(_, r)| r).collect();
    if ctx.json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        return output::line(if all { "no kept resources" } else { "no kept resources left to clean up" });
    }
    let mut t = output::table(&["BUILD", "KEY", "CLOUD", "ID", "REGION", "EXPIRES", "STATUS"]);
    for r in &rows {
        t.add_row(vec![
            r.build.clone(),
            r.key.clone(),
            r.kept.cloud.clone(),
            output::cell(&r.kept.id, 60),
            r.kept.region.clone().unwrap_or_else(|| "-".to_owned()),
            output::time(r.kept.expires_at),
            r.status.to_owned(),
        ]);
    }
    output::print_table(&t)
}

#[derive(Debug, Serialize)]
struct Reaped {
    build: String,
    key: String,
    id: String,
    cleanup: String,
    /// `None` in a dry run, or when the build's lease kept us from it.
    exit: Option<i32>,
    skipped: Option<String>,
}

async fn reap(ctx: &Ctx, dry_run: bool, timeout: Duration) -> Result<Exit, CliError> {
    let now = buildstate_store::now();
    // SIGINT/SIGTERM stop the running clean-up's whole process group; see run_cleanup.
    let stop = crate::signals::stop_on_signals();
    let leased: Vec<_> = ctx.store.leases().await?.into_iter().map(|l| l.build_id).collect();
    let mut done = Vec::new();
    let mut failed = 0usize;
    for (b, row) in all_rows(ctx, false).await? {
        if row.kept.expires_at > now {
            continue;
        }
        let mut report = Reaped {
            build: row.build.clone(),
            key: row.key.clone(),
            id: row.kept.id.clone(),
            cleanup: row.kept.cleanup.clone(),
            exit: None,
            skipped: None,
        };
        if dry_run {
            done.push(report);
            continue;
        }
        if let Some(sig) = *stop.borrow() {
            return Ok(if sig == 2 { Exit::Interrupted } else { Exit::Terminated });
        }
        // A runner holds the build: its metadata cannot be written without its lease,
        // and the outcome must be recorded — so leave it for the next reap.
        if leased.contains(&b.id) {
            report.skipped = Some("a runner holds the build's lease; it is reaped next time".to_owned());
            done.push(report);
            continue;
        }
        let key = MetaKey::new(&row.key).map_err(|e| CliError::internal(e.to_string()))?;
        // Claimed by a compare-and-swap on the version of the build as read here, and
        // the claim checked on that same read: a reap that listed the entry before
        // another claimed it must see the claim (CI found two reaps both running it).
        // Without a lease, whatever token this shell inherited: reap acts for nobody's
        // run, and leased builds were skipped above.
        let current = ctx.store.build(b.id).await?;
        let fresh =
            entries(&current).into_iter().find(|(k, _, _)| *k == key).and_then(|(_, _, kept)| kept.ok());
        let Some(mut kept) = fresh.filter(|k| k.reaped_at.is_none()) else {
            report.skipped = Some("another `kept reap` has cleaned it up".to_owned());
            done.push(report);
            continue;
        };
        // The claimer's own deadline; a claim written before deadlines were recorded
        // falls back to ours.
        let until = kept.reaping_until.or_else(|| kept.reaping_since.and_then(|t| after(t, timeout)));
        if until.is_some_and(|until| until > now) {
            report.skipped = Some("another `kept reap` is running its clean-up".to_owned());
            done.push(report);
            continue;
        }
        let claimed = buildstate_store::now();
        kept.reaping_since = Some(claimed);
        kept.reaping_until = after(claimed, timeout + CLAIM_MARGIN);
        match write(ctx.store.as_ref(), &current, &key, &kept, Guard::version(current.version)).await {
            Ok(_) => {}
            Err(e) if e.exit == Exit::Conflict => {
                report.skipped = Some("the build changed meanwhile; it is reaped next time".to_owned());
                done.push(report);
                continue;
            }
            Err(e) => return Err(e),
        }
        let (ended, out) = run_cleanup(&kept.cleanup, timeout, stop.clone()).await;
        kept.reaping_since = None;
        kept.reaping_until = None;
        let exit = match ended {
            Cleanup::Exited(code) => code,
            Cleanup::Interrupted(sig) => {
                // Not reaped: the claim is dropped so that the next reap runs it again.
                kept.reap_output = Some(format!("interrupted by signal {sig}; run `kept reap` again"));
                let current = ctx.store.build(b.id).await?;
                write(ctx.store.as_ref(), &current, &key, &kept, Guard::none()).await?;
                output::warning(format!(
                    "interrupted: the clean-up of build {} {} was stopped and is left for the next reap",
                    row.build, row.key
                ));
                return Ok(if sig == 2 { Exit::Interrupted } else { Exit::Terminated });
            }
        };
        kept.reap_exit = Some(exit);
        kept.reap_output = Some(out);
        if exit == 0 {
            kept.reaped_at = Some(buildstate_store::now());
        } else {
            failed += 1;
        }
        let current = ctx.store.build(b.id).await?;
        write(ctx.store.as_ref(), &current, &key, &kept, Guard::none()).await?;
        report.exit = Some(exit);
        done.push(report);
    }
    if ctx.json {
        output::json(&done)?;
    } else if done.is_empty() {
        output::line("no expired kept resources")?;
    } else {
        for r in &done {
            let what = match (&r.skipped, r.exit, dry_run) {
                (Some(why), _, _) => format!("skipped: {why}"),
                (None, _, true) => format!("would run: {}", r.cleanup),
                (None, Some(0), _) => format!("cleaned up: {}", r.cleanup),
                (None, exit, _) => format!("clean-up failed (exit {}): {}", exit.unwrap_or(-1), r.cleanup),
            };
            output::line(format!("build {} {} ({}): {what}", r.build, r.key, r.id))?;
        }
    }
    Ok(if failed > 0 { Exit::Internal } else { Exit::Ok })
}

/// How long past its own timeout a claiming reap may take to record the outcome
/// before its claim is presumed dead.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

/// SIGTERM → this long → SIGKILL, for a clean-up stopped at its timeout or by a signal.
const CLEANUP_GRACE: Duration = Duration::from_secs(5);

fn after(t: Timestamp, d: Duration) -> Option<Timestamp> {
    t.checked_add(jiff::SignedDuration::try_from(d).ok()?).ok()
}

enum Cleanup {
    /// Its exit code (124 on the timeout, 127 when it cannot start, 128+N killed by N).
    Exited(i32),
    /// Stopped by our SIGINT (2) or SIGTERM (15).
    Interrupted(i32),
}

/// Runs `sh -c CMD` as the leader of its own process group through the step executor:
/// the timeout and a stop kill the whole group (whatever the command started), not only
/// `sh`. Returns how it ended and the end of its combined output.
async fn run_cleanup(cmd: &str, timeout: Duration, stop: watch::Receiver<Option<i32>>) -> (Cleanup, String) {
    use buildstate_runner::executor::{OutputMode, StepEnd, StepRequest, run_step};
    use buildstate_runner::pipeline::Program;
    let program = Program::Shell(cmd.to_owned());
    let log = std::env::temp_dir().join(format!(
        "buildstate-reap-{}-{}.log",
        std::process::id(),
        buildstate_store::now().as_nanosecond()
    ));
    let workdir = std::env::temp_dir();
    let env = std::collections::BTreeMap::new();
    let request = StepRequest {
        program: &program,
        workdir: &workdir,
        env: &env,
        timeout: Some(timeout),
        log: &log,
        output: OutputMode::Capture,
        grace: CLEANUP_GRACE,
    };
    let result = run_step(request, stop).await;
    let _ = std::fs::remove_file(&log);
    let out = tail(result.tail.trim());
    let ended = match result.end {
        StepEnd::Exited(code) => Cleanup::Exited(code),
        StepEnd::Signaled(sig) => Cleanup::Exited(128 + sig),
        StepEnd::TimedOut => return (Cleanup::Exited(124), format!("timed out after {timeout:?}; {out}")),
        StepEnd::Interrupted(sig) => Cleanup::Interrupted(sig),
        StepEnd::SpawnFailed(why) => {
            return (Cleanup::Exited(127), format!("cannot run the clean-up: {why}"));
        }
    };
    (ended, out)
}

fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(OUTPUT_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_quoted() {
        assert_eq!(render("rm {id} {cloud}", "i-1", "aws", None, "b"), "rm i-1 aws");
        assert_eq!(render("echo {id}", "a'; rm -rf /", "x", None, "b"), r"echo 'a'\''; rm -rf /'");
        assert_eq!(render("x {region}", "i", "aws", None, "b"), "x ''");
    }
}
