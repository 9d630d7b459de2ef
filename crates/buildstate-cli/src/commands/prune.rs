//! `prune --completed-before DURATION|DATE [--status LIST] [--dry-run]`: retention.
//! Deletes old finished builds with their history, failures and artifact records, one
//! transaction per build (`Store::prune_build`), and the build's own log directory
//! (`<logs>/<build number>/`, where runners write its attempt logs; a log recorded
//! anywhere else is left alone and listed).
//!
//! The candidates are chosen from a listing, and each is judged again by the store in
//! the transaction that deletes it: a build that a runner took up, a person rewound or
//! retried meanwhile is skipped, never deleted. The log directory is moved aside
//! (`<logs>/.pruning-<pid>/`) before that transaction, removed after it, and moved back
//! if the build stayed; a prune killed in between is finished by the next one, which
//! puts back what belongs to a build that still exists and removes the rest. So a kill
//! at any instant leaves every build, with its logs, either whole or gone.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use buildstate_core::{Build, BuildDocument, BuildId, BuildStatus, Lease};
use buildstate_store::{FailureFilter, Kept, PruneRule, StoreError, StoreResult};
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::input::{Since, since_or_ago};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Builds that finished before this: how long ago (90d, 2w, 36h) or a time (2026-02-12,
    /// 2026-02-12T10:00:00Z). A failed build counts as finished at its last change
    #[arg(long, value_name = "DURATION|DATE", value_parser = since_or_ago)]
    completed_before: Since,
    /// Which finished builds, comma-separated: completed, cancelled, failed (only failed
    /// builds whose failures are all resolved). Running and pending builds are never pruned
    #[arg(long, value_name = "LIST", value_parser = statuses, default_value = "completed,cancelled")]
    status: Statuses,
    /// Say what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
    /// This store's attempt logs: only log files inside it are deleted [default: logs/
    /// beside the store]
    #[arg(long, value_name = "DIR", env = "BUILDSTATE_LOGS_DIR", hide_env_values = true)]
    logs_dir: Option<PathBuf>,
}

/// `--status`: finished statuses only, as `PruneRule` takes them.
#[derive(Clone, Debug)]
struct Statuses(Vec<BuildStatus>);

fn statuses(raw: &str) -> Result<Statuses, String> {
    let mut list = Vec::new();
    for word in raw.split(',').map(str::trim) {
        if word.is_empty() {
            return Err("expected statuses separated by commas, such as completed,cancelled".to_owned());
        }
        list.push(word.parse::<BuildStatus>().map_err(|e| e.to_string())?);
    }
    // The rule's own check, so that what is refused, and why, is said in one place.
    PruneRule::new(list.iter().copied(), Timestamp::UNIX_EPOCH).map_err(|e| e.to_string())?;
    Ok(Statuses(list))
}

/// What happened to one candidate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Removed,
    WouldRemove,
    Skipped,
}

/// One candidate, as scripts read it (`--json`); people get [`Row::line`].
#[derive(Debug, Serialize)]
struct Row {
    action: Action,
    build: String,
    build_id: BuildId,
    status: BuildStatus,
    /// When it finished, as retention judges it (a failed build: its last change).
    finished_at: Option<Timestamp>,
    /// What went, or would go (not for a skipped build).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    removed: Option<Removed>,
    /// Why a skipped build stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct Removed {
    events: usize,
    failures: usize,
    artifacts: usize,
    /// Log files deleted (or that would be).
    log_files: usize,
    /// Logs the history names that are not files inside the logs directory: left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs_kept: Vec<String>,
}

impl Row {
    fn line(&self, logs: &LogsDir) -> String {
        let when = self.finished_at.map_or_else(|| "-".to_owned(), output::time);
        let head = format!("{} ({} {when}", self.build, self.status);
        match (&self.action, &self.removed, &self.reason) {
            (Action::Skipped, _, reason) => {
                format!("skipped {head}): {}", reason.as_deref().unwrap_or("kept"))
            }
            (action, Some(r), _) => {
                let verb = if matches!(action, Action::Removed) { "removed" } else { "would remove" };
                let mut line = format!("{verb} {head}; {})", r.counts());
                if !r.logs_kept.is_empty() {
                    line.push_str(&format!(
                        "; {} outside {} kept",
                        plural(r.logs_kept.len(), "log"),
                        logs.shown.display()
                    ));
                }
                line
            }
            (_, None, _) => format!("{head})"),
        }
    }
}

impl Removed {
    fn of(doc: &BuildDocument, logs: &LogsDir) -> (Self, Vec<PathBuf>) {
        let mut removed = Removed {
            events: doc.history.len(),
            failures: doc.errors.len(),
            artifacts: doc.artifacts.len(),
            ..Removed::default()
        };
        let mut files = Vec::new();
        let mut recorded: Vec<&str> = doc.history.iter().filter_map(|e| e.log.as_deref()).collect();
        recorded.sort_unstable();
        recorded.dedup();
        for log in recorded {
            match logs.locate(log, doc.build_number.as_str()) {
                LogFile::Ours(path) => files.push(path),
                LogFile::Missing => {}
                LogFile::NotOurs => removed.logs_kept.push(log.to_owned()),
            }
        }
        removed.log_files = files.len();
        (removed, files)
    }

    fn counts(&self) -> String {
        format!(
            "{}, {}, {}, {}",
            plural(self.events, "event"),
            plural(self.failures, "failure"),
            plural(self.artifacts, "artifact"),
            plural(self.log_files, "log file")
        )
    }

    fn add(&mut self, other: &Removed) {
        self.events += other.events;
        self.failures += other.failures;
        self.artifacts += other.artifacts;
        self.log_files += other.log_files;
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

pub async fn run(a: Args, ctx: &Ctx) -> Result<(), CliError> {
    let now = buildstate_store::now();
    let before = a.completed_before.at(now);
    check_cutoff(a.completed_before, before, now)?;
    let rule = PruneRule::new(a.status.0.iter().copied(), before)?;
    // An empty BUILDSTATE_LOGS_DIR is unset, as the runner reads it.
    let given = a.logs_dir.filter(|d| !d.as_os_str().is_empty());
    let logs = LogsDir::new(given.unwrap_or_else(|| crate::open::beside(&ctx.db_path, "logs")));
    if !a.dry_run {
        logs.recover(ctx).await?;
    }
    let candidates = candidates(ctx, &rule).await?;
    let held: HashMap<BuildId, Lease> =
        ctx.store.leases().await?.into_iter().map(|l| (l.build_id, l)).collect();
    let mut rows = Vec::with_capacity(candidates.len());
    for b in &candidates {
        let row = match prune_one(ctx, &rule, b, held.get(&b.id), &logs, a.dry_run).await {
            Err(StoreError::BuildNotFound(_)) => {
                skipped(b, "gone: another process pruned it meanwhile".into())
            }
            done => done?,
        };
        if !ctx.json {
            // One line as each build goes, so that a long prune shows where it is.
            output::line(row.line(&logs))?;
        }
        rows.push(row);
    }
    if ctx.json {
        return output::json(&rows);
    }
    output::line(total(&rows, &rule, a.dry_run))
}

/// The shortest "how long ago" prune takes: below it, `90s` typed for `90d` would
/// delete every finished build.
const MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Refuses a cutoff that would take builds that just finished by mistake: one in the
/// future, or a duration under an hour (a time given as such is taken as meant).
fn check_cutoff(given: Since, before: Timestamp, now: Timestamp) -> Result<(), CliError> {
    if before > now {
        return Err(CliError::usage(format!(
            "--completed-before {} is in the future: every finished build would go; give a time in the past or how long ago (90d)",
            output::time(before)
        )));
    }
    if let Since::Ago(d) = given
        && d < MIN_AGE
    {
        return Err(CliError::usage(format!(
            "--completed-before {}s ago is under an hour: did you mean days (90d)? To prune builds that finished that recently, give the time itself ({})",
            d.as_secs(),
            before
        )));
    }
    Ok(())
}

/// Builds of the rule's statuses that finished before its time, oldest first.
async fn candidates(ctx: &Ctx, rule: &PruneRule) -> Result<Vec<Build>, CliError> {
    let mut found = Vec::new();
    for &status in rule.statuses() {
        let filter = buildstate_store::BuildFilter { status: Some(status), ..Default::default() };
        found.extend(
            ctx.store
                .list_builds(&filter)
                .await?
                .into_iter()
                .filter(|b| PruneRule::finished_at(b).is_some_and(|t| t < rule.ended_before())),
        );
    }
    found.sort_by_key(|b| (PruneRule::finished_at(b), b.id));
    Ok(found)
}

async fn prune_one(
    ctx: &Ctx,
    rule: &PruneRule,
    b: &Build,
    held: Option<&Lease>,
    logs: &LogsDir,
    dry_run: bool,
) -> StoreResult<Row> {
    let open = unresolved(ctx, b).await?;
    if let Some(kept) = rule.keeps(b, held, open) {
        return Ok(skipped(b, reason(kept, b, held, open)));
    }
    if dry_run {
        let doc = ctx.store.export_build(b.id).await?;
        let (mut removed, _) = Removed::of(&doc, logs);
        // What the real run removes: every file in the build's own log directory.
        removed.log_files = logs.count(b.number.as_str());
        return Ok(row(b, Action::WouldRemove, removed));
    }
    let aside = logs.move_aside(b.number.as_str());
    let pruned = ctx.store.prune_build(b.id, rule).await;
    let doc = match pruned {
        Ok(Some(doc)) => doc,
        Err(StoreError::BuildNotFound(e)) => {
            // Another prune deleted the build first: its logs go too, never back.
            if let Some(dir) = aside.as_deref() {
                logs.remove_aside(dir);
            }
            return Err(StoreError::BuildNotFound(e));
        }
        Ok(None) => {
            logs.put_back(aside.as_deref(), b.number.as_str());
            return Ok(skipped(b, changed_meanwhile(ctx, rule, b).await?));
        }
        Err(e) => {
            logs.put_back(aside.as_deref(), b.number.as_str());
            return Err(e);
        }
    };
    let (mut removed, _) = Removed::of(&doc, logs);
    removed.log_files = aside.as_deref().map_or(0, |dir| logs.remove_aside(dir));
    Ok(row(b, Action::Removed, removed))
}

/// The unresolved failures that keep a failed build (only a failed build's count).
async fn unresolved(ctx: &Ctx, b: &Build) -> StoreResult<usize> {
    if b.status != BuildStatus::Failed {
        return Ok(0);
    }
    let open = FailureFilter { build: Some(b.id), unresolved_only: true, ..FailureFilter::default() };
    Ok(ctx.store.failures(&open).await?.len())
}

/// Why the store kept a build that looked prunable when it was chosen: as it is now.
async fn changed_meanwhile(ctx: &Ctx, rule: &PruneRule, chosen: &Build) -> StoreResult<String> {
    let now = ctx.store.build(chosen.id).await?;
    let held = ctx.store.leases().await?.into_iter().find(|l| l.build_id == chosen.id);
    let open = unresolved(ctx, &now).await?;
    let why = match rule.keeps(&now, held.as_ref(), open) {
        Some(kept) => reason(kept, &now, held.as_ref(), open),
        None => "it changed while being pruned".to_owned(),
    };
    Ok(format!("changed meanwhile: {why}"))
}

fn reason(kept: Kept, b: &Build, held: Option<&Lease>, unresolved: usize) -> String {
    match (kept, held) {
        (Kept::Leased, Some(l)) => format!(
            "leased by {}, token #{}, {} {}; if that runner is gone, `buildstate lease break {}`",
            l.holder(),
            l.token.generation(),
            if l.is_expired(buildstate_store::now()) { "expired" } else { "expires" },
            output::time(l.expires_at),
            b.number
        ),
        (Kept::FailedOpen, _) => format!(
            "failed with {unresolved} unresolved {}; `buildstate failure resolve {} --notes …` lets it go",
            if unresolved == 1 { "failure" } else { "failures" },
            b.number
        ),
        (Kept::Status, _) => format!("it is {} now", b.status),
        (kept, _) => kept.to_string(),
    }
}

fn skipped(b: &Build, reason: String) -> Row {
    Row {
        action: Action::Skipped,
        build: b.number.to_string(),
        build_id: b.id,
        status: b.status,
        finished_at: PruneRule::finished_at(b),
        removed: None,
        reason: Some(reason),
    }
}

fn row(b: &Build, action: Action, removed: Removed) -> Row {
    Row {
        action,
        build: b.number.to_string(),
        build_id: b.id,
        status: b.status,
        finished_at: PruneRule::finished_at(b),
        removed: Some(removed),
        reason: None,
    }
}

fn total(rows: &[Row], rule: &PruneRule, dry_run: bool) -> String {
    if rows.is_empty() {
        let names: Vec<&str> = rule.statuses().iter().map(|s| s.as_str()).collect();
        return format!(
            "nothing to prune: no {} build finished before {}",
            names.join(" or "),
            output::time(rule.ended_before())
        );
    }
    let mut sum = Removed::default();
    let gone: Vec<&Removed> = rows.iter().filter_map(|r| r.removed.as_ref()).collect();
    for r in &gone {
        sum.add(r);
    }
    let skipped = rows.len() - gone.len();
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut line = format!("{verb} {}", plural(gone.len(), "build"));
    if !gone.is_empty() {
        line.push_str(&format!(" ({})", sum.counts()));
    }
    if skipped > 0 {
        line.push_str(&format!("; skipped {skipped}"));
    }
    line
}

/// This store's attempt logs directory, the only place `prune` deletes files in.
#[derive(Debug)]
struct LogsDir {
    /// As given, for messages.
    shown: PathBuf,
    /// Resolved (symbolic links followed); `None` if there is no such directory.
    root: Option<PathBuf>,
}

/// Where a log path recorded in a history points.
#[derive(Debug, PartialEq, Eq)]
enum LogFile {
    /// A regular file inside the logs directory (its resolved path).
    Ours(PathBuf),
    /// Nothing there (deleted already, never written, or not a local path).
    Missing,
    /// Outside the logs directory, through `..`, or not a regular file: left alone.
    NotOurs,
}

impl LogsDir {
    fn new(shown: PathBuf) -> Self {
        let root = std::fs::canonicalize(&shown).ok().filter(|p| p.is_dir());
        LogsDir { shown, root }
    }

    /// A relative path is taken from the current directory, as `buildstate logs` reads it.
    /// The directory part is resolved (symbolic links followed) and must lie inside the
    /// build's own log directory (`<logs>/<number>`: no other build's log, nor a file
    /// someone named with `--log`, is ever ours); the file itself must be a regular file
    /// (a symbolic link is never followed, nor removed). A path with `..` is never ours,
    /// wherever it would lead.
    fn locate(&self, recorded: &str, number: &str) -> LogFile {
        let path = Path::new(recorded);
        let exists = || std::fs::symlink_metadata(path).is_ok();
        if path.components().any(|c| c == Component::ParentDir) {
            return if exists() { LogFile::NotOurs } else { LogFile::Missing };
        }
        let (Some(root), Some(parent), Some(name)) = (&self.root, path.parent(), path.file_name()) else {
            return if exists() { LogFile::NotOurs } else { LogFile::Missing };
        };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let Ok(parent) = std::fs::canonicalize(parent) else { return LogFile::Missing };
        let file = parent.join(name);
        match std::fs::symlink_metadata(&file) {
            Err(_) => LogFile::Missing,
            Ok(m)
                if m.is_file()
                    && parent.starts_with(buildstate_runner::dispatch::build_log_dir(root, number)) =>
            {
                LogFile::Ours(file)
            }
            Ok(_) => LogFile::NotOurs,
        }
    }

    /// Where this process moves a build's log directory while its prune transaction runs.
    fn aside_root(&self) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join(format!("{ASIDE_PREFIX}{}", std::process::id())))
    }

    /// Moves the build's log directory aside; `None` if it has none (or it cannot move,
    /// which is said: its logs then stay, as a log outside would).
    fn move_aside(&self, number: &str) -> Option<PathBuf> {
        let root = self.root.as_ref()?;
        let dir = buildstate_runner::dispatch::build_log_dir(root, number);
        let meta = std::fs::symlink_metadata(&dir).ok()?;
        if !meta.is_dir() {
            return None;
        }
        let aside = self.aside_root()?;
        let target = aside.join(dir.file_name()?);
        let moved = std::fs::create_dir_all(&aside).and_then(|()| std::fs::rename(&dir, &target));
        match moved {
            Ok(()) => Some(target),
            // Another prune moved them first: they are its to remove or put back.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                output::warning(format!(
                    "cannot move the logs of {number} aside ({e}): they stay in {}",
                    dir.display()
                ));
                None
            }
        }
    }

    /// How many files the build's own log directory holds: what pruning it removes.
    fn count(&self, number: &str) -> usize {
        let Some(root) = &self.root else { return 0 };
        let dir = buildstate_runner::dispatch::build_log_dir(root, number);
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) { walk_files(&dir) } else { 0 }
    }

    /// Puts a build's log directory back where it was (its build stayed).
    fn put_back(&self, aside: Option<&Path>, number: &str) {
        let (Some(aside), Some(root)) = (aside, &self.root) else { return };
        let dir = buildstate_runner::dispatch::build_log_dir(root, number);
        if let Err(e) = std::fs::rename(aside, &dir) {
            output::warning(format!("cannot put the logs of {number} back from {} ({e})", aside.display()));
        }
    }

    /// Removes a pruned build's log directory from where it was moved aside; returns how
    /// many files were in it.
    fn remove_aside(&self, aside: &Path) -> usize {
        let files = walk_files(aside);
        if let Err(e) = std::fs::remove_dir_all(aside) {
            output::warning(format!("cannot remove the logs in {}: {e}", aside.display()));
        }
        if let Some(parent) = aside.parent() {
            // Only once empty: another build's logs may be on their way through.
            let _ = std::fs::remove_dir(parent);
        }
        files
    }

    /// Finishes what a prune killed mid-way left aside: a log directory whose build
    /// still exists goes back, any other is removed. Only the directories of processes
    /// that are gone are touched (another prune may be running).
    async fn recover(&self, ctx: &Ctx) -> Result<(), CliError> {
        let Some(root) = &self.root else { return Ok(()) };
        let Ok(entries) = std::fs::read_dir(root) else { return Ok(()) };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(ASIDE_PREFIX).and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid == std::process::id() || buildstate_runner::dispatch::pid_alive(pid) {
                continue;
            }
            let Ok(builds) = std::fs::read_dir(entry.path()) else { continue };
            for b in builds.flatten() {
                let number = b.file_name().to_string_lossy().into_owned();
                match ctx.store.find_build(&number).await {
                    Ok(found) if found.number.as_str() == number => {
                        self.put_back(Some(&b.path()), &number);
                    }
                    Err(StoreError::BuildNotFound(_)) | Ok(_) => {
                        self.remove_aside(&b.path());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let _ = std::fs::remove_dir(entry.path());
        }
        Ok(())
    }
}

/// The directories a prune moves log directories into, one per process.
const ASIDE_PREFIX: &str = ".pruning-";

/// How many regular files are under `dir` (symbolic links are not followed).
fn walk_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_finished_ones() {
        let ok = statuses("completed, cancelled,failed").expect("finished statuses");
        assert_eq!(ok.0, [BuildStatus::Completed, BuildStatus::Cancelled, BuildStatus::Failed]);
        for bad in ["running", "completed,pending", "", "completed,,failed", "done"] {
            assert!(statuses(bad).is_err(), "{bad:?}");
        }
        let why = statuses("completed,running").err().unwrap_or_default();
        assert!(why.contains("running builds are never pruned"), "{why}");
    }

    #[test]
    fn only_regular_files_inside_the_logs_dir_are_ours() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let logs = tmp.path().join("logs");
        let build = logs.join("b-1");
        std::fs::create_dir_all(&build).expect("mkdir");
        let inside = build.join("005-x-1-e3.log");
        std::fs::write(&inside, "out").expect("write");
        let outside = tmp.path().join("elsewhere.log");
        std::fs::write(&outside, "keep").expect("write");
        let link = build.join("link.log");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        let dir = LogsDir::new(logs.clone());
        let at = |p: &Path| dir.locate(p.to_str().expect("utf-8"), "b-1");

        assert_eq!(at(&inside), LogFile::Ours(std::fs::canonicalize(&inside).expect("exists")));
        assert_eq!(at(&outside), LogFile::NotOurs);
        assert_eq!(at(&link), LogFile::NotOurs, "a symbolic link is never followed");
        assert_eq!(at(&build.join("../../elsewhere.log")), LogFile::NotOurs, "never through ..");
        assert_eq!(at(&build.join("never-written.log")), LogFile::Missing);
        assert_eq!(at(&build), LogFile::NotOurs, "a directory is not a log");
        assert_eq!(dir.locate("s3://bucket/logs/x.log", "b-1"), LogFile::Missing);
        assert_eq!(
            dir.locate(inside.to_str().expect("utf-8"), "b-2"),
            LogFile::NotOurs,
            "another build's log"
        );
        let shared = logs.join("shared.log");
        std::fs::write(&shared, "named by several builds").expect("write");
        assert_eq!(at(&shared), LogFile::NotOurs, "a log outside the build's own directory");

        let aside = dir.move_aside("b-1").expect("moved aside");
        assert!(!build.exists() && aside.is_dir());
        dir.put_back(Some(&aside), "b-1");
        assert!(inside.exists(), "put back");
        let aside = dir.move_aside("b-1").expect("moved aside");
        assert_eq!(dir.remove_aside(&aside), 1, "one regular file (the link is not counted)");
        assert!(!aside.exists() && outside.exists() && logs.is_dir() && shared.exists());
    }
}
