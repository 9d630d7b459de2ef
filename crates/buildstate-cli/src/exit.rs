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
//! |    5 | `Conflict`          | already exists, still in use, changed by another writer, or a |
//! |      |                     | runner holds the build's lease (or took it over)              |
//! |    6 | `Unavailable`       | the store is busy or cannot be opened                         |
//! |    7 | `BadDocument`       | an import file is malformed, truncated or inconsistent        |
//! |   10 | `Delivered`         | `resume`: nothing to do, the build is delivered               |
//! |   11 | `NeedsIntervention` | `resume`: retries exhausted or persistent failure             |
//! |   12 | `Cancelled`         | `resume`: the build is cancelled                              |
//! |    8 | `Undelivered`       | `run`/`demo`: some build did not reach 100                    |
//! |  130 | `Interrupted`       | `run`: stopped by SIGINT (the attempt is recorded as interrupted) |
//! |  143 | `Terminated`        | `run`: stopped by SIGTERM                                     |
//! |  any | `Passthrough`       | `exec`: the wrapped command's own exit code                   |

use std::fmt;

use buildstate_store::StoreError;

/// A process exit code with a name (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    Internal,
    Usage,
    NotFound,
    Rejected,
    Conflict,
    Unavailable,
    BadDocument,
    Undelivered,
    Delivered,
    NeedsIntervention,
    Cancelled,
    Interrupted,
    Terminated,
    /// `exec` exits with the wrapped command's code, so that CI sees no difference.
    Passthrough(u8),
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::NotFound => 3,
            Exit::Rejected => 4,
            Exit::Conflict => 5,
            Exit::Unavailable => 6,
            Exit::BadDocument => 7,
            Exit::Undelivered => 8,
            Exit::Delivered => 10,
            Exit::NeedsIntervention => 11,
            Exit::Cancelled => 12,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
            Exit::Passthrough(code) => code,
        }
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
    /// For a "not found" in the store: where in `message` the store's name goes, and the
    /// word before it (`in`, `of`), for [`CliError::in_store`].
    store_at: Option<(usize, &'static str)>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError { exit, message: message.into(), hint: None, store_at: None }
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

    /// Names the store a "not found" looked in — `no build matches `x` in
    /// /srv/buildstate.db; …` — since an empty or wrong store is the usual cause.
    /// Other errors are left as they are.
    pub fn in_store(mut self, location: &str) -> Self {
        if let Some((at, word)) = self.store_at.take() {
            self.message.insert_str(at, &format!(" {word} {location}"));
        }
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
            | StoreError::Conflict { .. }
            | StoreError::LeaseHeld { .. }
            | StoreError::StaleLease { .. } => Exit::Conflict,
            StoreError::Unavailable { .. } | StoreError::Busy { .. } => Exit::Unavailable,
            StoreError::Document(_) => Exit::BadDocument,
            StoreError::Backend { .. } => Exit::Internal,
        };
        let hint = match &e {
            StoreError::Busy { .. } => {
                Some("another process held the database too long; run the command again")
            }
            StoreError::Unavailable { .. } => Some("check the path given by --db or BUILDSTATE_DB"),
            StoreError::LeaseHeld { .. } => Some("`buildstate lease list` shows every runner's lease"),
            StoreError::Backend { .. } => {
                Some("set BUILDSTATE_LOG=debug for details, and report it if it persists")
            }
            _ => None,
        };
        let message = e.to_string();
        // After the part that says what is missing, before what to do about it (at the
        // end, should the store's wording change).
        let after = |head: String, word| {
            Some((if message.starts_with(&head) { head.len() } else { message.len() }, word))
        };
        let store_at = match &e {
            StoreError::BuildNotFound(r) => after(format!("no build matches `{r}`"), "in"),
            StoreError::CatalogItemNotFound { kind, name, .. } => {
                after(format!("{kind} `{name}` is not in the catalog"), "of")
            }
            StoreError::FailureNotFound { build, number } => {
                after(format!("build {build} has no failure number {number}"), "in")
            }
            _ => None,
        };
        let err = CliError { store_at, ..CliError::new(exit, message) };
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
    use buildstate_core::{BuildId, BuildNumber, Lease, LeaseToken};

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
            (Exit::Undelivered, 8),
            (Exit::Delivered, 10),
            (Exit::NeedsIntervention, 11),
            (Exit::Cancelled, 12),
            (Exit::Interrupted, 130),
            (Exit::Terminated, 143),
            (Exit::Passthrough(42), 42),
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
        let number = BuildNumber::new("b-1").expect("valid number");
        let lease = Lease {
            build_id: BuildId::generate(1_000, 0),
            owner: "runner".into(),
            host: "host".into(),
            pid: 1,
            token: LeaseToken::new(2),
            acquired_at: jiff::Timestamp::UNIX_EPOCH,
            renewed_at: jiff::Timestamp::UNIX_EPOCH,
            expires_at: jiff::Timestamp::MAX,
        };
        let cases = [
            (StoreError::BuildNotFound("x".into()), Exit::NotFound),
            (
                StoreError::AmbiguousRef { reference: "r".into(), count: 2, candidates: "a, b".into() },
                Exit::Usage,
            ),
            (StoreError::Busy { waited_ms: 5 }, Exit::Unavailable),
            (StoreError::AlreadyExists { what: "build", key: "k".into() }, Exit::Conflict),
            (StoreError::InvalidInput("bad".into()), Exit::Usage),
            (StoreError::LeaseHeld { build: number.clone(), lease: Box::new(lease.clone()) }, Exit::Conflict),
            (
                StoreError::StaleLease {
                    build: number,
                    token: LeaseToken::first(1),
                    current: Some(Box::new(lease)),
                },
                Exit::Conflict,
            ),
        ];
        for (e, exit) in cases {
            assert_eq!(CliError::from(e).exit, exit);
        }
    }

    #[test]
    fn not_found_names_the_store() {
        let at = |e: StoreError| CliError::from(e).in_store("/srv/bs.db").to_string();
        assert_eq!(
            at(StoreError::BuildNotFound("x; y".into())),
            "no build matches `x; y` in /srv/bs.db; list builds with `buildstate build list`"
        );
        let number = BuildNumber::new("b-1").expect("valid number");
        assert_eq!(
            at(StoreError::FailureNotFound { build: number, number: 3 }),
            "build b-1 has no failure number 3 in /srv/bs.db; see `buildstate failure list --build b-1`"
        );
        let missing = StoreError::CatalogItemNotFound {
            kind: buildstate_core::CatalogKind::Platform,
            name: "nope".into(),
            known: "aws".into(),
        };
        assert!(at(missing).starts_with("platform `nope` is not in the catalog of /srv/bs.db (known: aws)"));
        assert_eq!(at(StoreError::Busy { waited_ms: 5 }), "the store stayed busy for 5 ms; try again");
    }
}
