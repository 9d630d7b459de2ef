//! Checked values from the command line: clap value parsers for what the core types do
//! not already parse, and text read from stdin or a file.

use std::io::Read;
use std::path::Path;

use buildstate_core::{MetaKey, MetaValue, Sha256Hex};

use crate::exit::CliError;

/// Largest `--error -` / `--error @FILE` input read. The store keeps at most
/// `MAX_MESSAGE_BYTES` of it (head and tail); past this the input is refused rather
/// than read into memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// One-line free text (display names, regions, URIs, reasons' short cousins): printable,
/// at most 256 bytes. Control characters are refused here, not escaped, because these
/// values are shown in tables and used as identifiers by people.
pub fn label(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.len() > 256 {
        return Err(format!("{} bytes is too long: at most 256 bytes", s.len()));
    }
    if s.chars().any(char::is_control) {
        return Err("control characters (newline, tab, escape, …) are not allowed here".to_owned());
    }
    Ok(s.to_owned())
}

/// A URI: like a label but up to 2048 bytes and without spaces.
pub fn uri(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 2048 || s.chars().any(|c| c.is_control() || c == ' ') {
        return Err("expected a URI or id of 1-2048 bytes without spaces or control characters".to_owned());
    }
    Ok(s.to_owned())
}

/// A path or URL to a log: 1-4096 bytes without control characters (spaces allowed).
pub fn log_path(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > 4096 || raw.chars().any(char::is_control) {
        return Err("expected a path or URL of 1-4096 bytes without control characters".to_owned());
    }
    Ok(raw.to_owned())
}

pub fn sha256(raw: &str) -> Result<Sha256Hex, String> {
    Sha256Hex::new(raw.trim())
}

/// `KEY=VALUE` for `--meta`.
pub fn meta_pair(raw: &str) -> Result<(MetaKey, MetaValue), String> {
    let (k, v) = raw.split_once('=').ok_or_else(|| "expected KEY=VALUE".to_owned())?;
    let key = MetaKey::new(k).map_err(|e| e.to_string())?;
    let value = MetaValue::new(&key, v).map_err(|e| e.to_string())?;
    Ok((key, value))
}

/// `--since` of `build list`, reports and `prune`: an RFC 3339 time
/// (`2026-02-12T10:00:00Z`), a UTC date (`2026-02-12`), or how long ago (`90d`, `2w`,
/// `36h`, `1h30m`), read as the API reads it.
pub use buildstate_core::{Since, parse_since as since_or_ago};

/// Where a long value comes from: `-` is stdin, `@PATH` a file, anything else itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    Inline(&'a str),
    Stdin,
    File(&'a str),
}

impl<'a> Source<'a> {
    pub fn of(raw: &'a str) -> Self {
        match raw {
            "-" => Source::Stdin,
            _ => raw.strip_prefix('@').map_or(Source::Inline(raw), Source::File),
        }
    }

    /// The text, read whole. Invalid UTF-8 (tools print Latin-1 too) becomes U+FFFD
    /// rather than an error: losing a failure record would be worse.
    pub fn read(self, what: &str) -> Result<String, CliError> {
        match self {
            Source::Inline(s) => Ok(s.to_owned()),
            Source::Stdin => read_bounded(std::io::stdin().lock(), what, "standard input"),
            Source::File(path) => {
                let bytes = read_file(Path::new(path), what, MAX_INPUT_BYTES)?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    }
}

/// Largest pipeline file read (a matrix of every cloud and OS is a few KiB).
pub const MAX_PIPELINE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest build document imported (a build's history is a few hundred KiB at most).
pub const MAX_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a whole file the user named, refusing what is not a regular file (`/dev/zero`,
/// a FIFO, a directory) and anything over `max` bytes without reading it into memory.
/// Checked on the opened file, so a file swapped in between cannot slip through.
pub fn read_file(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, CliError> {
    let f = open_regular(path, what)?;
    read_capped(f, what, &path.display().to_string(), max)
}

/// Opens a file the user named for reading, refusing what is not a regular file. The
/// check comes before `open`, because opening a FIFO blocks until somebody writes to it
/// (`import fifo` hung for ever), and again on the opened file, so that one swapped in
/// between cannot slip through.
pub fn open_regular(path: &Path, what: &str) -> Result<std::fs::File, CliError> {
    let shown = path.display();
    let refuse = || {
        CliError::usage(format!("{what} {shown} is not a regular file"))
            .with_hint("give the path of a file; use `-` to read from standard input where that is offered")
    };
    let meta =
        std::fs::metadata(path).map_err(|e| CliError::usage(format!("cannot read {what} {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(refuse());
    }
    let f =
        std::fs::File::open(path).map_err(|e| CliError::usage(format!("cannot read {what} {shown}: {e}")))?;
    match f.metadata() {
        Ok(m) if m.is_file() => Ok(f),
        Ok(_) => Err(refuse()),
        Err(e) => Err(CliError::usage(format!("cannot read {what} {shown}: {e}"))),
    }
}

/// Reads and validates a pipeline file (bounded, regular files only).
pub fn pipeline(path: &Path) -> Result<buildstate_runner::pipeline::Pipeline, CliError> {
    let bytes = read_file(path, "the pipeline file", MAX_PIPELINE_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError::usage(format!("the pipeline file {} is not UTF-8 text: {e}", path.display()))
    })?;
    buildstate_runner::pipeline::Pipeline::parse(&text, path).map_err(|e| CliError::usage(e.to_string()))
}

/// Reads and validates a state catalog file (`build create --catalog`): a pipeline file's
/// `catalog:` value on its own, read by the pipeline's own parser.
pub fn catalog(path: &Path) -> Result<buildstate_core::StateCatalog, CliError> {
    let bytes = read_file(path, "the catalog file", MAX_PIPELINE_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError::usage(format!("the catalog file {} is not UTF-8 text: {e}", path.display()))
    })?;
    buildstate_runner::pipeline::Pipeline::parse_catalog(&text, path)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// Reads at most `max` bytes of `r`, refusing more.
pub fn read_capped(r: impl Read, what: &str, from: &str, max: u64) -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    r.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::usage(format!("cannot read {what} from {from}: {e}")))?;
    if buf.len() as u64 > max {
        return Err(CliError::usage(format!("{what} {from} is over {} MiB", max >> 20)));
    }
    Ok(buf)
}

fn read_bounded(r: impl Read, what: &str, from: &str) -> Result<String, CliError> {
    let buf = read_capped(r, what, from, MAX_INPUT_BYTES)
        .map_err(|e| e.with_hint("pass the end of the output instead, for example `tail -c 1M build.log`"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(Source::of("-"), Source::Stdin);
        assert_eq!(Source::of("@/tmp/x"), Source::File("/tmp/x"));
        assert_eq!(Source::of("boom"), Source::Inline("boom"));
    }

    #[test]
    fn since_takes_times_and_dates() {
        use buildstate_core::parse_time as since;
        assert_eq!(since("2026-02-12").map(|t| t.to_string()).ok().as_deref(), Some("2026-02-12T00:00:00Z"));
        assert!(since("2026-02-12T10:00:00+02:00").is_ok());
        assert!(since("yesterday").is_err());
    }

    #[test]
    fn labels_refuse_controls() {
        assert_eq!(label(" East US ").ok().as_deref(), Some("East US"));
        assert!(label("a\x1bb").is_err());
        assert!(label(&"x".repeat(300)).is_err());
    }

    #[test]
    fn meta_pairs() {
        assert!(meta_pair("ami=ami-123").is_ok());
        assert!(meta_pair("novalue").is_err());
        assert!(meta_pair("bad key=1").is_err());
    }

    #[test]
    fn bounded_reads_refuse_huge_input() {
        let data = [b'x'; 10];
        assert_eq!(read_bounded(&data[..], "x", "t").ok().map(|s| s.len()), Some(10));
        let invalid = [0x66, 0xff, 0x6f];
        assert_eq!(read_bounded(&invalid[..], "x", "t").ok().as_deref(), Some("f\u{fffd}o"));
    }
}
