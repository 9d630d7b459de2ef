//! Live progress of a run: a line per build redrawn in place on a terminal, plain
//! timestamped lines everywhere else (CI logs, pipes, files).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use buildstate_core::BuildNumber;
use buildstate_runner::dispatch::Progress;
use tokio::sync::mpsc;

use crate::output;

/// Prints progress until the sender side is dropped.
pub async fn print(mut events: mpsc::UnboundedReceiver<Progress>, quiet: bool) {
    let live = !quiet && std::io::stdout().is_terminal();
    let mut board = Board::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(e) if quiet => drop(e),
                Some(e) if live => { board.update(&e); board.redraw(); }
                Some(e) => plain(&e),
                None => break,
            },
            _ = tick.tick(), if live => board.redraw(),
        }
    }
}

fn plain(e: &Progress) {
    let now = jiff::Timestamp::now().strftime("%H:%M:%S");
    let text = match e {
        Progress::Picked { build, state, resumed: true, done_before, .. } => {
            format!("{build}  resumed at {state}: {done_before} milestone(s) already done are not run again")
        }
        Progress::Picked { build, .. } => format!("{build}  starting"),
        Progress::Started { build, state, name, attempt } => {
            format!("{build}  {state:>3} {name:<18} attempt {attempt} started")
        }
        Progress::Ended { build, state, name, attempt, duration, ok: true, .. } => format!(
            "{build}  {state:>3} {name:<18} attempt {attempt} completed in {}",
            output::duration(duration.as_millis() as u64)
        ),
        Progress::Ended { build, state, name, attempt, duration, message, retry_in, .. } => {
            let retry = match retry_in {
                Some(d) => format!("; retrying in {}", output::duration(d.as_millis() as u64)),
                None => "; not retried".to_owned(),
            };
            format!(
                "{build}  {state:>3} {name:<18} attempt {attempt} FAILED after {}: {}{retry}",
                output::duration(duration.as_millis() as u64),
                message.as_deref().unwrap_or("failed")
            )
        }
        Progress::Skipped { build, state, name, by_step } => {
            let why = if *by_step { "passed by the step before it" } else { "not a step of this pipeline" };
            format!("{build}  {state:>3} {name:<18} skipped ({why})")
        }
        Progress::Done(o) => {
            let number = o.number.as_ref().map_or_else(|| "-".to_owned(), BuildNumber::to_string);
            match (&o.note, o.delivered()) {
                (None, true) => {
                    format!("{number}  delivered in {}", output::duration(o.elapsed.as_millis() as u64))
                }
                (Some(note), true) => format!("{number}  {note}"),
                (Some(note), _) => format!("{number}  stopped at {} ({}): {note}", o.state, o.state_name),
                (None, false) => format!("{number}  stopped at {} ({})", o.state, o.state_name),
            }
        }
    };
    output::progress_line(&format!("{now} {text}"));
}

/// The terminal view: one line per build, in the order builds were picked up.
#[derive(Default)]
struct Board {
    rows: BTreeMap<usize, (String, String)>,
    order: BTreeMap<String, usize>,
    since: BTreeMap<String, Instant>,
    drawn: usize,
}

impl Board {
    fn row(&mut self, build: &BuildNumber) -> usize {
        let next = self.order.len();
        *self.order.entry(build.to_string()).or_insert(next)
    }

    fn update(&mut self, e: &Progress) {
        let (build, text, running) = match e {
            Progress::Picked { build, state, .. } => (build.clone(), format!("{state:>3} waiting"), false),
            Progress::Started { build, state, name, attempt } => {
                (build.clone(), format!("{state:>3} {name:<18} attempt {attempt}"), true)
            }
            Progress::Ended { build, state, name, attempt, ok: false, retry_in: Some(d), .. } => (
                build.clone(),
                format!(
                    "{state:>3} {name:<18} attempt {attempt} failed; retry in {}",
                    output::duration(d.as_millis() as u64)
                ),
                false,
            ),
            Progress::Ended { build, state, name, ok, .. } => (
                build.clone(),
                format!("{state:>3} {name:<18} {}", if *ok { "done" } else { "FAILED" }),
                false,
            ),
            Progress::Skipped { build, state, name, .. } => {
                (build.clone(), format!("{state:>3} {name:<18} skipped"), false)
            }
            Progress::Done(o) => {
                let Some(number) = &o.number else { return };
                let text = if o.delivered() {
                    format!("100 delivered in {}", output::duration(o.elapsed.as_millis() as u64))
                } else {
                    format!(
                        "{:>3} {:<18} stopped: {}",
                        o.state,
                        o.state_name,
                        o.note.as_deref().unwrap_or("-")
                    )
                };
                (number.clone(), text, false)
            }
        };
        let row = self.row(&build);
        if running {
            self.since.insert(build.to_string(), Instant::now());
        } else {
            self.since.remove(build.as_str());
        }
        self.rows.insert(row, (build.to_string(), text));
    }

    fn redraw(&mut self) {
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        let width = self.rows.values().map(|(b, _)| b.len()).max().unwrap_or(0);
        for (build, text) in self.rows.values() {
            let elapsed = self
                .since
                .get(build)
                .map(|t| format!("  {}", output::duration(t.elapsed().as_millis() as u64)))
                .unwrap_or_default();
            let _ = writeln!(out, "\x1b[2K{build:<width$}  {text}{elapsed}");
        }
        self.drawn = self.rows.len();
        let _ = out.flush();
    }
}
