//! What went wrong with a pipeline file or an `--only` filter, and where.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

/// Which stage refused the input, for callers that branch (exit codes, hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineErrorKind {
    /// The file could not be read (missing, unreadable, not UTF-8).
    Read,
    /// Not well-formed YAML, or not the shape of a pipeline: an unknown or duplicate
    /// key, a list where a single value belongs, and the like.
    Syntax,
    /// The shape is right but a value is not: a bad name, duration, state code, path.
    Invalid,
    /// An `--only` filter is malformed.
    Filter,
}

/// An error in a pipeline file or `--only` filter.
///
/// Displays as `FILE:LINE:COLUMN: what was wrong; what was expected`; the position is
/// left out when it is not known, and filter errors have no file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    kind: PipelineErrorKind,
    file: Option<PathBuf>,
    position: Option<(u64, u64)>,
    message: String,
}

impl PipelineError {
    pub fn kind(&self) -> PipelineErrorKind {
        self.kind
    }

    /// The file as the caller named it (not made absolute, so messages read naturally).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// 1-based line, when known.
    pub fn line(&self) -> Option<u64> {
        self.position.map(|(line, _)| line)
    }

    /// 1-based column in characters, when known.
    pub fn column(&self) -> Option<u64> {
        self.position.map(|(_, column)| column)
    }

    /// The message without file and position.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(super) fn read(file: &Path, message: impl Into<String>) -> Self {
        PipelineError {
            kind: PipelineErrorKind::Read,
            file: Some(file.to_path_buf()),
            position: None,
            message: message.into(),
        }
    }

    pub(super) fn filter(message: impl Into<String>) -> Self {
        PipelineError { kind: PipelineErrorKind::Filter, file: None, position: None, message: message.into() }
    }

    /// An error from the YAML reader, with its message rephrased for people who write
    /// pipeline files rather than Rust.
    pub(super) fn yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        PipelineError {
            kind: PipelineErrorKind::Syntax,
            file: Some(file.to_path_buf()),
            position: err.location().and_then(position),
            message: describe(err),
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.position) {
            (Some(file), Some((line, column))) => {
                write!(f, "{}:{line}:{column}: {}", file.display(), self.message)
            }
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PipelineError {}

/// Builds errors that point into one pipeline file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub file: &'a Path,
}

impl Source<'_> {
    /// A value in the file is wrong.
    pub fn invalid(&self, at: Location, message: impl Into<String>) -> PipelineError {
        PipelineError {
            kind: PipelineErrorKind::Invalid,
            file: Some(self.file.to_path_buf()),
            position: position(at),
            message: message.into(),
        }
    }
}

fn position(at: Location) -> Option<(u64, u64)> {
    (at != Location::UNKNOWN && at.line() > 0).then(|| (at.line(), at.column()))
}

fn describe(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    match err.without_snippet() {
        E::AliasError { error, .. } => describe(error),
        E::SerdeUnknownField { field, expected, .. } => {
            format!("unknown key `{field}`; expected one of: {}", expected.join(", "))
        }
        E::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate key `{key}`; each key may appear only once in a mapping")
        }
        E::DuplicateMappingKey { key: None, .. } => {
            "duplicate key; each key may appear only once in a mapping".to_owned()
        }
        E::SerdeInvalidType { unexpected, expected, .. } => {
            format!("found {unexpected}; expected {expected}")
        }
        E::MultipleDocuments { .. } => {
            "a second YAML document starts here; expected one pipeline per file".to_owned()
        }
        E::NullIntoString { .. } => {
            "empty value; expected a value (write \"\" for an empty string)".to_owned()
        }
        E::Unexpected { expected, .. } => match *expected {
            "sequence start" => "expected a list here ([a, b], or lines starting with `- `)".to_owned(),
            "mapping start" => "expected a mapping here ({key: value}, or `key: value` lines)".to_owned(),
            "string scalar" | "scalar" => "expected a single value here, not a list or a mapping".to_owned(),
            other => format!("expected {other}"),
        },
        other => UserMessageFormatter.format_message(other).into_owned(),
    }
}
