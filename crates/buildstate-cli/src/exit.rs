//! Exit codes and the error a user reads.
//!
//! The codes are part of the interface: scripts and the docs branch on them, so they
//! never change meaning.
//!
//! | code | name                | when                                                          |
//! |-----:|---------------------|---------------------------------------------------------------|
//! |    0 | `Ok`                | success                                                       |
//! |    1 | `Internal`          | storage fault, I/O error on our own output, or a bug          |
//! |    2 | `Usage`             | bad flag or value (state code, word, name, JSON), ambiguous reference |
//! |    3 | `NotFound`          | build, catalog item, failure or metadata key does not exist   |
//! |    4 | `Rejected`          | the transition rules refused the command; nothing changed     |
//! |    5 | `Conflict`          | already exists, still in use, or changed by another writer    |
//! |    6 | `Unavailable`       | the store is busy or cannot be opened                         |
//! |    7 | `BadDocument`       | an import file is malformed, truncated or inconsistent        |
//! |   10 | `Delivered`         | `resume`: nothing to do, the build is delivered               |
//! |   11 | `NeedsIntervention` | `resume`: retries exhausted or persistent failure             |
//! |   12 | `Cancelled`         | `resume`: the build is cancelled                              |

use std::fmt;

use buildstate_store::StoreError;

/// A process exit code with a name (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Internal = 1,
    Usage = 2,
    NotFound = 3,
    Rejected = 4,
    Conflict = 5,
    Unavailable = 6,
    BadDocument = 7,
    Delivered = 10,
    NeedsIntervention = 11,
    Cancelled = 12,
}

impl Exit {
    pub const fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// What went wrong, for a person: a one-line message, an optional hint, and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    message: String,
    hint: Option<String>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError { exit, message: message.into(), hint: None }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(Exit::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        CliError::new(Exit::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        CliError::new(Exit::Internal, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Writes `error: …` and maybe `hint: …` to stderr, each forced onto one line so that
    /// hostile input echoed in a message cannot forge extra lines or terminal escapes.
    pub fn report(&self) {
        eprintln!("error: {}", one_line(&self.message));
        if let Some(hint) = &self.hint {
            eprintln!("hint: {}", one_line(hint));
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Replaces line breaks and other control characters so a message stays on one line.
pub fn one_line(s: &str) -> String {
    s.trim_end()
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else if c.is_control() {
                '?'
            } else {
                c
            }
        })
        .collect()
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let exit = match &e {
            StoreError::BuildNotFound(_)
            | StoreError::CatalogItemNotFound { .. }
            | StoreError::FailureNotFound { .. } => Exit::NotFound,
            StoreError::AmbiguousRef { .. } | StoreError::InvalidInput(_) => Exit::Usage,
            StoreError::Rejected(_) => Exit::Rejected,
            StoreError::AlreadyExists { .. }
            | StoreError::CatalogItemInUse { .. }
            | StoreError::Conflict { .. } => Exit::Conflict,
            StoreError::Unavailable { .. } | StoreError::Busy { .. } => Exit::Unavailable,
            StoreError::Document(_) => Exit::BadDocument,
            StoreError::Backend { .. } => Exit::Internal,
        };
        let hint = match &e {
            StoreError::Busy { .. } => {
                Some("another process held the database too long; run the command again")
            }
            StoreError::Unavailable { .. } => Some("check the path given by --db or BUILDSTATE_DB"),
            StoreError::Backend { .. } => {
                Some("set BUILDSTATE_LOG=debug for details, and report it if it persists")
            }
            _ => None,
        };
        let err = CliError::new(exit, e.to_string());
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    }
}

/// Errors writing our own output (stdout, `--output FILE`).
pub fn io_error(what: &str, e: &std::io::Error) -> CliError {
    CliError::internal(format!("cannot {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_pinned() {
        let all = [
            (Exit::Ok, 0),
            (Exit::Internal, 1),
            (Exit::Usage, 2),
            (Exit::NotFound, 3),
            (Exit::Rejected, 4),
            (Exit::Conflict, 5),
            (Exit::Unavailable, 6),
            (Exit::BadDocument, 7),
            (Exit::Delivered, 10),
            (Exit::NeedsIntervention, 11),
            (Exit::Cancelled, 12),
        ];
        for (exit, code) in all {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }

    #[test]
    fn messages_are_forced_onto_one_line() {
        assert_eq!(one_line("a\nb\r\x1b[31mc\n"), "a b ?[31mc");
    }

    #[test]
    fn store_errors_map_to_their_kind() {
        let cases = [
            (StoreError::BuildNotFound("x".into()), Exit::NotFound),
            (
                StoreError::AmbiguousRef { reference: "r".into(), count: 2, candidates: "a, b".into() },
                Exit::Usage,
            ),
            (StoreError::Busy { waited_ms: 5 }, Exit::Unavailable),
            (StoreError::AlreadyExists { what: "build", key: "k".into() }, Exit::Conflict),
            (StoreError::InvalidInput("bad".into()), Exit::Usage),
        ];
        for (e, exit) in cases {
            assert_eq!(CliError::from(e).exit, exit);
        }
    }
}
