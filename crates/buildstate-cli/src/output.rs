//! Everything printed on stdout: JSON for scripts, tables and lines for people, and the
//! time and duration formats they share. Notices and warnings for people go to stderr
//! through [`notice`] and [`warning`] (silent under `--quiet`), diagnostics through
//! `tracing` (only errors under `--quiet`), errors through `CliError::report`.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

use buildstate_core::{Build, BuildStatus, MetaKey, MetaValue};
use comfy_table::{ContentArrangement, Table, presets};
use jiff::Timestamp;
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::exit::{CliError, io_error};

/// Writes `text` and a newline to stdout. A closed pipe (`buildstate build list | head`)
/// is not an error: the reader has what it wanted.
pub fn line(text: impl AsRef<str>) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{}", text.as_ref()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(io_error("write to standard output", &e)),
        _ => Ok(()),
    }
}

/// Writes bytes to stdout as they are (completion scripts, man pages); a closed pipe is
/// not an error.
pub fn raw(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(io_error("write to standard output", &e)),
        _ => Ok(()),
    }
}

/// Prints a value as pretty JSON.
pub fn json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::internal(format!("cannot encode the output as JSON: {e}")))?;
    line(text)
}

/// A table with a header, plain columns and no terminal-width wrapping, so that output
/// is the same on a terminal, in a pipe and in snapshots.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_string()));
    t
}

pub fn print_table(t: &Table) -> Result<(), CliError> {
    // comfy-table pads the first and last column with a space; people read it trimmed.
    let mut text: Vec<String> =
        t.lines().map(|l| l.trim_end().strip_prefix(' ').unwrap_or(&l).to_owned()).collect();
    if let Some(header) = text.first_mut().filter(|_| color_stdout()) {
        *header = format!("\x1b[1m{header}\x1b[0m");
    }
    line(text.join("\n"))
}

/// `2026-02-12 10:04:05Z`: UTC, to the second.
pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

pub fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), time)
}

/// `350ms`, `2.5s`, `12s`, `4m 05s`, `1h 02m`, `2d 03h`: rounded to the last unit shown
/// (never cut down: a p90 of 2,990 ms next to a mean of 3,000 ms must not read 2s and
/// 3s), with tenths of a second under ten seconds.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let tenths = (ms + 50) / 100;
    if tenths < 100 {
        return format!("{}.{}s", tenths / 10, tenths % 10);
    }
    let s = (ms + 500) / 1000;
    if s < 3600 {
        return if s < 60 { format!("{s}s") } else { format!("{}m {:02}s", s / 60, s % 60) };
    }
    let m = (s + 30) / 60;
    if m < 24 * 60 {
        return format!("{}h {:02}m", m / 60, m % 60);
    }
    let h = (m + 30) / 60;
    format!("{}d {:02}h", h / 24, h % 24)
}

pub fn opt_duration(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), duration)
}

/// Free text shown in a table cell: one line, at most `max` columns wide on a terminal.
/// Counted in display width, as comfy-table aligns the columns: a CJK character takes
/// two columns, a combining accent none, so neither bytes nor characters would do.
pub fn cell(text: &str, max: usize) -> String {
    let flat = crate::exit::one_line(text);
    if flat.width() <= max {
        return flat;
    }
    let room = max.saturating_sub(1);
    let mut s = String::new();
    let mut used = 0;
    for c in flat.chars() {
        used += c.width().unwrap_or(0);
        if used > room {
            break;
        }
        s.push(c);
    }
    s.push('…');
    s
}

/// A build as the CLI shows it to scripts: its fields without the catalog, plus the
/// derived values people ask for (state name, open attempt, duration).
#[derive(Debug, Serialize)]
pub struct BuildView<'a> {
    pub id: String,
    pub number: &'a str,
    pub platform: &'a str,
    pub os: &'a str,
    pub image_type: &'a str,
    pub state: u8,
    pub state_name: &'a str,
    pub status: BuildStatus,
    pub needs_intervention: bool,
    pub attempt: u32,
    pub attempt_open: bool,
    pub attempt_started_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub duration_ms: Option<u64>,
    pub created_by: &'a str,
    pub ci_url: Option<&'a str>,
    pub metadata: &'a BTreeMap<MetaKey, MetaValue>,
    pub version: u64,
}

impl<'a> BuildView<'a> {
    pub fn new(b: &'a Build) -> Self {
        BuildView {
            id: b.id.to_string(),
            number: b.number.as_str(),
            platform: b.platform.as_str(),
            os: b.os.as_str(),
            image_type: b.image_type.as_str(),
            state: b.state.get(),
            state_name: b.state_name(),
            status: b.status,
            needs_intervention: b.needs_intervention,
            attempt: b.attempt,
            attempt_open: b.attempt_open(),
            attempt_started_at: b.attempt_started_at,
            created_at: b.created_at,
            started_at: b.started_at,
            ended_at: b.ended_at,
            updated_at: b.updated_at,
            duration_ms: b.duration_ms(buildstate_store::now()),
            created_by: &b.created_by,
            ci_url: b.ci_url.as_deref(),
            metadata: &b.metadata,
            version: b.version,
        }
    }
}

/// `45 (storage)`.
pub fn state_label(b: &Build) -> String {
    format!("{} ({})", b.state, b.state_name())
}

/// `failed, needs intervention` / `running, attempt 2 open` / `pending`.
pub fn status_label(b: &Build) -> String {
    if b.needs_intervention {
        format!("{}, needs intervention", b.status)
    } else if b.attempt_open() {
        format!("{}, attempt {} open", b.status, b.attempt)
    } else {
        b.status.to_string()
    }
}

/// After a write: the build as JSON, or `text` for people.
pub fn build_or_line(json_out: bool, b: &Build, text: impl AsRef<str>) -> Result<(), CliError> {
    if json_out { json(&BuildView::new(b)) } else { line(text) }
}

/// When to colour: `--color`, `BUILDSTATE_COLOR`, `NO_COLOR`, the config file's `color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal (not `TERM=dumb`)
    Auto,
    /// Also into pipes and files
    Always,
    /// Plain text only
    Never,
}

impl ColorWhen {
    pub fn parse(s: &str) -> Option<ColorWhen> {
        match s {
            "auto" => Some(ColorWhen::Auto),
            "always" => Some(ColorWhen::Always),
            "never" => Some(ColorWhen::Never),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ColorWhen::Auto => "auto",
            ColorWhen::Always => "always",
            ColorWhen::Never => "never",
        }
    }

    /// Whether a stream that is (or is not) a terminal gets colour.
    pub fn enabled(self, terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => terminal && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
        }
    }

    pub const fn clap(self) -> clap::ColorChoice {
        match self {
            ColorWhen::Auto => clap::ColorChoice::Auto,
            ColorWhen::Always => clap::ColorChoice::Always,
            ColorWhen::Never => clap::ColorChoice::Never,
        }
    }
}

/// How this process prints, settled once from the settings before any command runs
/// (stdout and stderr are process-wide, so this is too).
#[derive(Debug, Clone, Copy)]
struct Style {
    color_stdout: bool,
    quiet: bool,
}

static STYLE: OnceLock<Style> = OnceLock::new();

/// Settles colour and `--quiet`, and starts diagnostics on stderr at the level in
/// `BUILDSTATE_LOG` (error, warn, info, debug, trace; default warn) — only errors under
/// `--quiet` — so that stdout carries only the command's output.
pub fn init(color: ColorWhen, quiet: bool) {
    let _ = STYLE.set(Style { color_stdout: color.enabled(io::stdout().is_terminal()), quiet });
    let level = if quiet {
        tracing::Level::ERROR
    } else {
        std::env::var("BUILDSTATE_LOG")
            .ok()
            .and_then(|l| l.trim().parse::<tracing::Level>().ok())
            .unwrap_or(tracing::Level::WARN)
    };
    // `try_init`: a second subscriber (tests) must not panic.
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(color.enabled(io::stderr().is_terminal()))
        .with_max_level(level)
        .with_target(false)
        .try_init();
}

fn color_stdout() -> bool {
    STYLE.get().is_some_and(|s| s.color_stdout)
}

/// `--quiet`: progress and information are not printed, errors and data are.
pub fn quiet() -> bool {
    STYLE.get().is_some_and(|s| s.quiet)
}

/// A notice on stderr: what happened beside the command's output (`created a new store
/// at …`, `added platform …`). Every notice and warning goes through here, so that
/// `--quiet` leaves stderr to errors alone (`CliError::report`, which it never hides).
/// A closed or broken stderr is ignored: a notice is not worth failing a command for.
pub fn notice(text: impl AsRef<str>) {
    if !quiet() {
        let _ = writeln!(io::stderr().lock(), "{}", text.as_ref());
    }
}

/// `warning: …` on stderr, under the same rule as [`notice`].
pub fn warning(text: impl AsRef<str>) {
    notice(format!("warning: {}", text.as_ref()));
}

/// A progress line on stdout (none under `--quiet`); a closed pipe is ignored like
/// everywhere else.
pub fn progress_line(text: &str) {
    if !quiet() {
        let _ = line(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(350), "350ms");
        assert_eq!(duration(999), "999ms");
        assert_eq!(duration(1_000), "1.0s");
        assert_eq!(duration(1_989), "2.0s", "rounded, not cut down");
        assert_eq!(duration(2_990), "3.0s");
        assert_eq!(duration(9_949), "9.9s");
        assert_eq!(duration(9_950), "10s");
        assert_eq!(duration(59_600), "1m 00s");
        assert_eq!(duration(3_599_400), "59m 59s");
        assert_eq!(duration(3_599_600), "1h 00m");
        assert_eq!(duration(86_370_000), "1d 00h");
        assert_eq!(duration(12_000), "12s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_720_000), "1h 02m");
        assert_eq!(duration(183_600_000), "2d 03h");
    }

    #[test]
    fn cells_are_one_bounded_line() {
        assert_eq!(cell("a\nb", 10), "a b");
        assert_eq!(cell("abcdef", 4), "abc…");
    }

    #[test]
    fn cells_are_bounded_in_columns_not_bytes_or_characters() {
        assert_eq!(cell("Jürgen", 6), "Jürgen", "ü is two bytes, one column");
        assert_eq!(cell("日本語テキスト", 14), "日本語テキスト");
        let cut = cell("日本語テキスト", 9);
        assert_eq!(cut, "日本語テ…", "four wide characters and the ellipsis");
        assert!(cut.width() <= 9, "{cut}");
        assert_eq!(cell("e\u{301}te", 3), "e\u{301}te", "a combining accent takes no column");
    }
}
