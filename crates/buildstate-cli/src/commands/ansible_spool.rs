//! The Ansible callback's spool: JSON Lines the plugin appends while the playbook runs,
//! and the cursor (`SPOOL.done`, the last sequence number recorded) that makes
//! recording it resumable. `ansible record` (called by the plugin at play boundaries),
//! `ansible replay` (by a person, after an outage) and `ansible-playbook` (after
//! Ansible exits) all go through [`Replayer::run`], so an event is recorded once
//! whoever gets to it first.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildstate_core::{Command, FailureClass, FailureInfo, FailureType, MetaKey, MetaValue, StateCode};
use buildstate_runner::integrate::{Closing, DriveError, Driver};
use buildstate_store::Store;
use serde::Deserialize;
use serde_json::Value;

use super::tool_session::drive_error;
use crate::exit::{CliError, Exit};

/// The tool name the driver records skipped milestones as passed by.
const PASSED_BY: &str = "ansible";

/// One line of the spool. Unknown events are skipped (a newer plugin may say more).
#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlaybookStart {
        #[serde(default)]
        build: Option<String>,
        /// The run's own id (a plugin of buildstate 0.1 wrote none).
        #[serde(default)]
        run: Option<String>,
    },
    PlayStart {
        milestone: Option<i64>,
        #[serde(default)]
        play: String,
    },
    TaskFailed {
        #[serde(default)]
        task: String,
        #[serde(default)]
        role: Option<String>,
        #[serde(default)]
        host: String,
        #[serde(default)]
        module: Option<String>,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        stderr_tail: String,
        #[serde(default)]
        ignored: bool,
        #[serde(default)]
        rescued: bool,
        #[serde(default)]
        play: Option<String>,
        #[serde(default)]
        playbook: Option<String>,
        /// When Ansible reported it (seconds since the epoch): a replay records later.
        #[serde(default)]
        at: Option<f64>,
    },
    Unreachable {
        #[serde(default)]
        task: String,
        /// `ignore_unreachable` on the task: counted as ignored, not a failure.
        #[serde(default)]
        ignored: bool,
        #[serde(default)]
        host: String,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        play: Option<String>,
        #[serde(default)]
        playbook: Option<String>,
        #[serde(default)]
        at: Option<f64>,
    },
    PlayEnd {
        milestone: Option<i64>,
        #[serde(default)]
        failed_hosts: Vec<String>,
        #[serde(default)]
        unreachable_hosts: Vec<String>,
        #[serde(default)]
        last_of_milestone: bool,
        #[serde(default)]
        last: bool,
    },
    Stats {
        #[serde(default)]
        hosts: BTreeMap<String, BTreeMap<String, u64>>,
    },
    PlaybookEnd {},
}

/// A numbered event.
#[derive(Debug)]
pub struct Entry {
    pub seq: u64,
    pub event: Event,
}

/// Reads the spool. A line that is not whole JSON is where a killed plugin stopped
/// writing: reading stops there, so it is never skipped past and lost.
/// The largest spool read: a few thousand events are a few megabytes.
const MAX_SPOOL_BYTES: u64 = 256 << 20;

pub fn read(path: &Path) -> Result<Vec<Entry>, CliError> {
    // A FIFO or a device would block or never end: a spool is a regular file.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            return Err(CliError::usage(format!("{} is not a regular file, so not a spool", path.display()))
                .with_hint(
                    "give the spool file the plugin named in its warning (BUILDSTATE_ANSIBLE_SPOOL)",
                ));
        }
        if meta.len() > MAX_SPOOL_BYTES {
            return Err(CliError::usage(format!(
                "the spool {} is {} bytes, over the {} bytes a spool may have",
                path.display(),
                meta.len(),
                MAX_SPOOL_BYTES
            ))
            .with_hint("a playbook's spool is far smaller; check that this is the right file"));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        let exit = if e.kind() == std::io::ErrorKind::NotFound { Exit::NotFound } else { Exit::Internal };
        CliError::new(exit, format!("cannot read the spool {}: {e}", path.display()))
            .with_hint("give the spool the plugin named in its warning (BUILDSTATE_ANSIBLE_SPOOL)")
    })?;
    let mut entries = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, line) in lines.iter().enumerate() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            // A half-written last line is a run cut short; one in the middle is damage,
            // said out loud rather than hiding the events after it.
            if i + 1 < lines.len() {
                crate::output::warning(format!(
                    "line {} of the spool {} is not an event; it is passed over",
                    i + 1,
                    path.display()
                ));
                continue;
            }
            break;
        };
        let Some(seq) = value.get("seq").and_then(Value::as_u64) else { continue };
        // An event this version does not know is passed over, not an error.
        if let Ok(event) = serde_json::from_value::<Event>(value) {
            entries.push(Entry { seq, event });
        }
    }
    Ok(entries)
}

/// The build the spool's last run was for, as the plugin was told (`BUILDSTATE_BUILD`).
pub fn build_of(entries: &[Entry]) -> Option<String> {
    entries.iter().rev().find_map(|e| match &e.event {
        Event::PlaybookStart { build, .. } => build.clone(),
        _ => None,
    })
}

/// `SPOOL.done`: the last sequence number recorded.
pub fn cursor_path(spool: &Path) -> PathBuf {
    let mut name = spool.as_os_str().to_owned();
    name.push(".done");
    PathBuf::from(name)
}

/// The cursor beside the spool: `None` when there is none, an error when it is not a
/// number (hostile review: a damaged cursor read as 0 recorded the whole spool again).
fn read_cursor(spool: &Path) -> Result<Option<u64>, CliError> {
    let path = cursor_path(spool);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            CliError::new(
                Exit::BadDocument,
                format!("the spool's cursor {} is damaged: it holds no event number", path.display()),
            )
            .with_hint("write the number of the last event recorded into it (`buildstate history REF` shows what was), or remove it if nothing of this spool was recorded")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::internal(format!("cannot read the spool's cursor {}: {e}", path.display()))),
    }
}

/// The metadata key holding, on the build, how far a spool was recorded
/// (`RUN:SEQ`): what a lost cursor file is recovered from.
const CURSOR_META: &str = "ansible.spool";

/// The run id of the spool's last `playbook_start` at or before `seq`.
fn run_at(entries: &[Entry], seq: u64) -> Option<&str> {
    entries.iter().rev().filter(|e| e.seq <= seq).find_map(|e| match &e.event {
        Event::PlaybookStart { run, .. } => run.as_deref(),
        _ => None,
    })
}

/// Written next to its final name and renamed over it, so that a crash leaves the old
/// cursor or the new one, never half of one (which would replay everything again).
fn write_cursor(spool: &Path, seq: u64) -> Result<(), CliError> {
    let path = cursor_path(spool);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(format!("{seq}\n").as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    written.map_err(|e| CliError::internal(format!("cannot write the spool cursor {}: {e}", path.display())))
}

/// What the run so far has recorded, folded from its events (recorded or not): a later
/// `record` process decides from it what an event still means.
#[derive(Debug, Default)]
pub struct RunState {
    /// A failure of this run was recorded: nothing after it moves the build.
    pub failed: bool,
    /// The mapped milestone the current play belongs to.
    milestone: Option<i64>,
    /// Rescued and ignored failures per milestone (`None`: before any mapped play).
    counts: BTreeMap<Option<i64>, (u64, u64)>,
}

/// What one pass over the spool did.
#[derive(Debug, Default)]
pub struct Replayed {
    pub recorded: usize,
    pub run: RunState,
}

/// Applies spool events through a driver.
pub struct Replayer<'a> {
    pub driver: &'a mut Driver,
    pub store: Arc<dyn Store>,
}

impl Replayer<'_> {
    /// Records the events after the cursor, moving the cursor after each one. Stops at
    /// the first error of the store (the cursor stays before the event that failed).
    pub async fn run(&mut self, spool: &Path, entries: &[Entry]) -> Result<Replayed, CliError> {
        let cursor = match read_cursor(spool)? {
            Some(c) => c,
            // No cursor (a spool copied to another machine, a cursor removed): how far
            // this spool was recorded is also on the build.
            None => self.recorded_on_build(entries),
        };
        if let Some(last) = entries.last().map(|e| e.seq).filter(|last| cursor > *last) {
            crate::output::warning(format!(
                "the cursor of {} says event {cursor} was recorded, but the spool ends at {last}: is it this spool's cursor?",
                spool.display()
            ));
        }
        let mut done = Replayed::default();
        let mut last_recorded = None;
        for entry in entries {
            if entry.seq <= cursor {
                fold(&mut done.run, &entry.event);
                continue;
            }
            self.apply(&mut done.run, &entry.event).await?;
            fold(&mut done.run, &entry.event);
            write_cursor(spool, entry.seq)?;
            last_recorded = Some(entry.seq);
            done.recorded += 1;
        }
        if let Some(seq) = last_recorded
            && let Some(run) = run_at(entries, seq)
        {
            self.set_text_meta(CURSOR_META, &format!("{run}:{seq}")).await?;
        }
        Ok(done)
    }

    /// The last event of this spool recorded on the build, from its `ansible.spool`
    /// metadata; 0 when it names another spool's run (or none).
    fn recorded_on_build(&self, entries: &[Entry]) -> u64 {
        let meta = self.driver.build().metadata.iter().find(|(k, _)| k.as_str() == CURSOR_META);
        let Some((run, seq)) = meta.and_then(|(_, v)| v.as_str().rsplit_once(':')) else { return 0 };
        let ours =
            entries.iter().any(|e| matches!(&e.event, Event::PlaybookStart { run: Some(r), .. } if r == run));
        if ours { seq.parse().unwrap_or(0) } else { 0 }
    }

    async fn apply(&mut self, run: &mut RunState, event: &Event) -> Result<(), CliError> {
        match event {
            // Running a playbook again is a person's decision to try again (as for
            // `buildstate packer`); under a wrapper or a runner the build is already
            // running and this changes nothing.
            // Running a playbook again re-opens a failed build; its milestone starts
            // when a play reaches it (hostile review: a re-run whose plays were all
            // behind the build completed the build's next milestone).
            // On its own (no lease: no wrapper, no runner), an attempt still open is the
            // last playbook's, which was killed before it ended (hostile review: the next
            // run completed it, as if one attempt had run throughout).
            Event::PlaybookStart { .. }
                if self.driver.guard().lease.is_none() && self.driver.build().attempt_open() =>
            {
                self.driver
                    .take_over("the playbook before this one stopped without ending its attempt")
                    .await
                    .map_err(drive_error)?;
            }
            Event::PlaybookStart { .. } => {
                self.driver.reopen("re-run by ansible-playbook").await.map_err(drive_error)?;
            }
            // A play of no milestone of its own before any mapped one belongs to the
            // build's current milestone.
            Event::PlayStart { milestone: None, .. } if !run.failed && run.milestone.is_none() => {
                self.driver.begin("re-run by ansible-playbook").await.map_err(drive_error)?;
            }
            Event::PlayStart { milestone: Some(m), play } if !run.failed => {
                let Some(code) = self.code(*m, play) else { return Ok(()) };
                match self.driver.reach(code, PASSED_BY).await {
                    Ok(_) => {}
                    Err(DriveError::NotInCatalog { code, build }) => crate::output::warning(format!(
                        "play \"{play}\" maps to milestone {code}, which is not in the catalog of build {build}; \
                         it counts as part of the milestone before it"
                    )),
                    // A play past the pipeline's next step would skip that step.
                    Err(DriveError::BeyondStep { code, until }) => crate::output::warning(format!(
                        "play \"{play}\" maps to milestone {code}, at or after {until}, the pipeline's next step; \
                         it counts as part of the milestone before it"
                    )),
                    Err(e) => return Err(drive_error(e)),
                }
            }
            Event::TaskFailed { ignored: false, rescued: false, .. } if !run.failed => {
                let counts = run.counts.get(&run.milestone).copied().unwrap_or_default();
                let (failure, output) = task_failure(event, counts);
                self.driver.fail(failure, &output).await.map_err(drive_error)?;
            }
            Event::Unreachable { ignored: false, .. } if !run.failed => {
                let (failure, output) = unreachable_failure(event);
                self.driver.fail(failure, &output).await.map_err(drive_error)?;
            }
            Event::PlayEnd { milestone, failed_hosts, unreachable_hosts, last_of_milestone, last } => {
                self.write_counts(run, *milestone).await?;
                let clean = failed_hosts.is_empty() && unreachable_hosts.is_empty() && !run.failed;
                // Under a runner the step's milestone is the runner's to close.
                let runner_closes = *last && matches!(self.driver.closing(), Closing::Runner { .. });
                // Only the milestone the play belongs to is completed: a play behind the
                // build's milestone (a re-run, a retry) completes nothing.
                let at = i64::from(self.driver.build().state.get());
                let its_own = milestone.is_none_or(|m| m == at);
                if clean && *last_of_milestone && !runner_closes && its_own {
                    self.driver.complete_current(None).await.map_err(drive_error)?;
                }
            }
            Event::Stats { hosts } => {
                let sum = |k: &str| hosts.values().map(|h| h.get(k).copied().unwrap_or(0)).sum::<u64>();
                for what in ["rescued", "ignored"] {
                    let n = sum(what);
                    if n > 0 {
                        self.set_meta(&format!("ansible.{what}"), n).await?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn code(&self, m: i64, play: &str) -> Option<StateCode> {
        match StateCode::new(m) {
            Ok(c) => Some(c),
            Err(e) => {
                crate::output::warning(format!(
                    "play \"{play}\" names milestone {m}, which is not a milestone: {e}"
                ));
                None
            }
        }
    }

    /// Ansible's rescued and ignored failures of a milestone, where they stay visible:
    /// attempts hold no counters, so they are build metadata `ansible.<code>.rescued`
    /// and `.ignored` (written only when not zero).
    async fn write_counts(&self, run: &RunState, milestone: Option<i64>) -> Result<(), CliError> {
        let Some(&(rescued, ignored)) = run.counts.get(&milestone) else { return Ok(()) };
        let code = milestone.map_or_else(|| self.driver.build().state.to_string(), |m| m.to_string());
        if rescued > 0 {
            self.set_meta(&format!("ansible.{code}.rescued"), rescued).await?;
        }
        if ignored > 0 {
            self.set_meta(&format!("ansible.{code}.ignored"), ignored).await?;
        }
        Ok(())
    }

    async fn set_meta(&self, key: &str, value: u64) -> Result<(), CliError> {
        self.set_text_meta(key, &value.to_string()).await
    }

    async fn set_text_meta(&self, key: &str, value: &str) -> Result<(), CliError> {
        let key = MetaKey::new(key).map_err(|e| CliError::internal(e.to_string()))?;
        let value = MetaValue::new(&key, value).map_err(|e| CliError::internal(e.to_string()))?;
        let set = Command::SetMeta { key, value: Some(value) };
        self.store.apply(self.driver.build().id, &set, self.driver.guard()).await.map_err(CliError::from)?;
        Ok(())
    }
}

/// What an event tells about the run, recorded or not.
fn fold(run: &mut RunState, event: &Event) {
    match event {
        Event::PlaybookStart { .. } => *run = RunState::default(),
        Event::PlayStart { milestone: Some(m), .. } => run.milestone = Some(*m),
        Event::TaskFailed { ignored, rescued, .. } => {
            let c = run.counts.entry(run.milestone).or_default();
            if *rescued {
                c.0 += 1;
            } else if *ignored {
                c.1 += 1;
            } else {
                run.failed = true;
            }
        }
        Event::Unreachable { ignored: true, .. } => run.counts.entry(run.milestone).or_default().1 += 1,
        Event::Unreachable { ignored: false, .. } => run.failed = true,
        _ => {}
    }
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, |v| Value::String(plain(&v)))
}

/// Ansible's own text as a person reads it: colour sequences dropped (a module's stderr
/// is often coloured), other control characters escaped, bounded.
fn plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // CSI: parameter and intermediate bytes, then one final byte.
            for n in chars.by_ref() {
                if ('@'..='~').contains(&n) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    buildstate_core::clean_text(&out, TEXT_BYTES)
}

/// The most of one text field kept in a failure's details (the plugin keeps 4 KiB of
/// each; this bounds a spool written by hand).
const TEXT_BYTES: usize = 8 << 10;

/// When the spool says the event happened, as RFC 3339 (a replay records it later).
fn happened(at: Option<f64>) -> Value {
    at.filter(|s| s.is_finite())
        .and_then(|s| jiff::Timestamp::from_microsecond((s * 1e6) as i64).ok())
        .map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// Ansible's exit codes: 2 when a host failed, 4 when one was unreachable.
const EXIT_HOST_FAILED: i32 = 2;
const EXIT_UNREACHABLE: i32 = 4;

/// A failed task: type `ansible`, persistent unless the retry policy's patterns say
/// otherwise, naming task, host and Ansible's message.
fn task_failure(event: &Event, (rescued, ignored): (u64, u64)) -> (FailureInfo, String) {
    let Event::TaskFailed { task, role, host, module, msg, stderr_tail, play, playbook, at, .. } = event
    else {
        return (generic("not a task failure"), String::new());
    };
    let (task, host, msg, stderr_tail) = (plain(task), plain(host), plain(msg), plain(stderr_tail));
    let first_line = msg.lines().next().unwrap_or_default();
    let details: BTreeMap<String, Value> = [
        ("playbook", text(playbook)),
        ("play", text(play)),
        ("role", text(role)),
        ("task", Value::String(task.clone())),
        ("host", Value::String(host.clone())),
        ("module", text(module)),
        ("msg", Value::String(msg.clone())),
        ("stderr_tail", Value::String(stderr_tail.clone())),
        ("rescued", Value::from(rescued)),
        ("ignored", Value::from(ignored)),
        ("at", happened(*at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let failure = FailureInfo {
        failure_type: ansible_type(),
        class: FailureClass::Persistent,
        component: module.as_deref().or(role.as_deref()).map(plain),
        message: format!("TASK [{task}] on {host}: {first_line}"),
        details,
        exit_code: Some(EXIT_HOST_FAILED),
    };
    (failure, format!("{msg}\n{stderr_tail}"))
}

/// An unreachable host: a `network` failure, transient (the next attempt may reach it).
fn unreachable_failure(event: &Event) -> (FailureInfo, String) {
    let Event::Unreachable { task, host, msg, play, playbook, at, .. } = event else {
        return (generic("not an unreachable host"), String::new());
    };
    let (task, host, msg) = (plain(task), plain(host), plain(msg));
    let details: BTreeMap<String, Value> = [
        ("playbook", text(playbook)),
        ("play", text(play)),
        ("task", Value::String(task.clone())),
        ("host", Value::String(host.clone())),
        ("msg", Value::String(msg.clone())),
        ("at", happened(*at)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let failure = FailureInfo {
        failure_type: "network".parse().unwrap_or_else(|_| FailureType::unknown()),
        class: FailureClass::Transient,
        component: Some("ansible".to_owned()),
        message: format!(
            "host {host} unreachable (TASK [{task}]): {}",
            msg.lines().next().unwrap_or_default()
        ),
        details,
        exit_code: Some(EXIT_UNREACHABLE),
    };
    (failure, msg)
}

pub fn ansible_type() -> FailureType {
    "ansible".parse().unwrap_or_else(|_| FailureType::unknown())
}

fn generic(message: &str) -> FailureInfo {
    FailureInfo {
        failure_type: ansible_type(),
        class: FailureClass::Persistent,
        component: None,
        message: message.to_owned(),
        details: BTreeMap::new(),
        exit_code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(lines: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, lines.join("\n")).expect("write");
        (dir, path)
    }

    #[test]
    fn a_torn_last_line_ends_the_spool_and_unknown_events_are_passed_over() {
        let (_d, path) = spool(&[
            r#"{"seq":1,"event":"playbook_start","build":"B7"}"#,
            r#"{"seq":2,"event":"from_the_future"}"#,
            r#"{"seq":3,"event":"play_start","milestone":25,"play":"25 x"}"#,
            r#"{"seq":4,"event":"play_e"#,
        ]);
        let entries = read(&path).expect("read");
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(build_of(&entries).as_deref(), Some("B7"));
    }

    #[test]
    fn the_cursor_is_a_number_beside_the_spool() {
        let (_d, path) = spool(&[]);
        assert_eq!(read_cursor(&path).expect("read"), None);
        write_cursor(&path, 42).expect("write");
        assert_eq!(read_cursor(&path).expect("read"), Some(42));
        std::fs::write(cursor_path(&path), "abc").expect("write");
        assert!(read_cursor(&path).is_err_and(|e| e.exit == Exit::BadDocument));
        assert!(cursor_path(&path).to_string_lossy().ends_with("s.jsonl.done"));
    }

    #[test]
    fn rescued_and_ignored_failures_are_counted_not_failures() {
        let mut run = RunState::default();
        let failed = |ignored, rescued| Event::TaskFailed {
            task: "t".into(),
            role: None,
            host: "h".into(),
            module: None,
            msg: String::new(),
            stderr_tail: String::new(),
            ignored,
            rescued,
            play: None,
            playbook: None,
            at: None,
        };
        fold(&mut run, &Event::PlayStart { milestone: Some(25), play: "p".into() });
        fold(&mut run, &failed(true, false));
        fold(&mut run, &failed(false, true));
        assert!(!run.failed);
        assert_eq!(run.counts.get(&Some(25)), Some(&(1, 1)));
        fold(&mut run, &failed(false, false));
        assert!(run.failed);
        fold(&mut run, &Event::PlaybookStart { build: None, run: None });
        assert!(!run.failed, "a new run starts clean");
    }

    #[test]
    fn a_task_failure_names_task_host_and_message() {
        let e = Event::TaskFailed {
            task: "install".into(),
            role: Some("base".into()),
            host: "web1".into(),
            module: Some("ansible.builtin.command".into()),
            msg: "non-zero return code\nmore".into(),
            stderr_tail: "boom".into(),
            ignored: false,
            rescued: false,
            play: Some("25 baseline".into()),
            playbook: Some("site.yml".into()),
            at: Some(1_796_325_685.5),
        };
        let (f, out) = task_failure(&e, (0, 2));
        assert_eq!(f.message, "TASK [install] on web1: non-zero return code");
        assert_eq!(f.component.as_deref(), Some("ansible.builtin.command"));
        assert_eq!(f.failure_type.as_str(), "ansible");
        assert_eq!(f.details.get("ignored"), Some(&Value::from(2)));
        assert!(out.contains("boom"));
        assert_eq!(f.exit_code, Some(2), "Ansible's code for a failed host");
        assert_eq!(f.details.get("at"), Some(&Value::from("2026-12-03T19:21:25.5Z")), "when it happened");
    }

    #[test]
    fn colour_is_dropped_and_other_control_characters_escaped() {
        assert_eq!(plain("\x1b[31;1mboom\x1b[0m\tdone\x07"), "boom\tdone\\u{7}");
        assert_eq!(plain("cut \x1b["), "cut ");
        assert!(plain(&"x".repeat(100_000)).len() <= TEXT_BYTES);
        assert_eq!(happened(Some(f64::NAN)), Value::Null);
    }
}
