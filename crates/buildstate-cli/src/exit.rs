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
//! |    7 | `BadDocument`       | an import file is malformed, truncated or inconsistent; `build |
//! |      |                     | list`: documents of a JSON-file store it cannot read          |
//! |   10 | `Delivered`         | `resume`: nothing to do, the build is delivered               |
//! |   11 | `NeedsIntervention` | `resume`: retries exhausted or persistent failure             |
//! |   12 | `Cancelled`         | `resume`: the build is cancelled                              |
//! |    8 | `Undelivered`       | `run`/`demo`/`worker --exit-when-idle`: a build did not reach 100; |
//! |      |                     | `wait`: a build will not reach the milestone                  |
//! |  130 | `Interrupted`       | `run`, `worker`: stopped by SIGINT (the attempt is recorded as interrupted) |
//! |  143 | `Terminated`        | `run`: stopped by SIGTERM                                     |
//! |  any | `Passthrough`       | `exec`: the wrapped command's own exit code; `wait`: 124 when |
//! |      |                     | its timeout passed (as `timeout(1)`)                          |
//!
//! Errors reach a code through one mapping per library error type: `From<StoreError>`
//! and `From<RunError>` below, each an exhaustive match, each pinned by a test over every
//! variant.

use std::fmt;

use buildstate_runner::dispatch::RunError;
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
        // A JSON-file store with damaged documents, met by a command that needs every
        // build (a report, prune): a bad document (exit 7) naming each one, as `build list`
        // does, not an internal error.
        if let StoreError::Backend { source, .. } = &e
            && let Some(partial) = source.downcast_ref::<buildstate_files::UnreadableBuilds>()
        {
            let reasons: Vec<&str> = partial.unreadable.iter().map(|(_, why)| why.as_str()).collect();
            return CliError::new(
                Exit::BadDocument,
                format!("build documents cannot be read: {}", reasons.join("; ")),
            )
            .with_hint("restore or fix each file named, or move it out of the store's builds/ directory");
        }
        let exit = match &e {
            StoreError::BuildNotFound(_)
            | StoreError::CatalogItemNotFound { .. }
            | StoreError::FailureNotFound { .. }
            | StoreError::TokenNotFound(_)
            | StoreError::WebhookNotFound(_) => Exit::NotFound,
            StoreError::AmbiguousRef { .. } | StoreError::InvalidInput(_) | StoreError::Denied { .. } => {
                Exit::Usage
            }
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
            StoreError::Unavailable { location, .. } => Some(unavailable_hint(location)),
            StoreError::LeaseHeld { .. } => Some("`buildstate lease list` shows every runner's lease"),
            StoreError::Denied { .. } => Some(
                "set BUILDSTATE_TOKEN to a token with the scope this needs (`buildstate token create` on the server's store)",
            ),
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

impl From<RunError> for CliError {
    /// The runner's errors (`run`, `exec`, `enqueue`, `worker`, `demo`): the store's by
    /// their own mapping, the rest by kind. No wildcard: a new variant does not compile
    /// until it has a code here.
    fn from(e: RunError) -> Self {
        match e {
            RunError::Store(e) => e.into(),
            RunError::NothingSelected { .. } => CliError::usage(e.to_string()),
            RunError::LeaseTtl { .. } => CliError::usage(e.to_string())
                .with_hint("pass --lease-ttl between 3s and 24h, e.g. 90s or 10m"),
            RunError::Metadata(_) | RunError::TaskFailed(_) => CliError::internal(e.to_string())
                .with_hint("set BUILDSTATE_LOG=debug for details, and report it if it persists"),
        }
    }
}

/// What to check when the store cannot be used, for its kind: a PostgreSQL store is
/// reached through its connection string (a server, an account, TLS), the others are
/// a file or a directory.
fn unavailable_hint(location: &str) -> &'static str {
    if crate::config::is_server_url(location) {
        "check the URL given by --server or BUILDSTATE_SERVER, and that the server runs there; a private CA needs SSL_CERT_FILE, a proxy HTTPS_PROXY or NO_PROXY"
    } else if buildstate_postgres::conninfo::is_url(location) {
        "check the URL given by --db or BUILDSTATE_DB: its host, port, database, user and password, and sslmode"
    } else if buildstate_postgres::conninfo::is_key_value(location) {
        "check the connection string given by --db or BUILDSTATE_DB: its host, port, dbname, user and password, and sslmode"
    } else {
        "check the path given by --db or BUILDSTATE_DB"
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

    fn lease() -> Lease {
        Lease {
            build_id: BuildId::generate(1_000, 0),
            owner: "runner".into(),
            host: "host".into(),
            pid: 1,
            token: LeaseToken::new(2),
            acquired_at: jiff::Timestamp::UNIX_EPOCH,
            renewed_at: jiff::Timestamp::UNIX_EPOCH,
            expires_at: jiff::Timestamp::MAX,
        }
    }

    /// The README's exit code for `e`'s kind of error, written down apart from the
    /// mapping, with the variant's name. No wildcard: a new variant of `RunError` or
    /// `StoreError` does not compile until it is given its code here — and then
    /// `every_runner_error_has_its_exit_code` fails until it has a case (and the count).
    fn documented(e: &RunError) -> (&'static str, Exit) {
        match e {
            RunError::Store(s) => match s {
                StoreError::BuildNotFound(_) => ("BuildNotFound", Exit::NotFound),
                StoreError::AmbiguousRef { .. } => ("AmbiguousRef", Exit::Usage),
                StoreError::CatalogItemNotFound { .. } => ("CatalogItemNotFound", Exit::NotFound),
                StoreError::CatalogItemInUse { .. } => ("CatalogItemInUse", Exit::Conflict),
                StoreError::AlreadyExists { .. } => ("AlreadyExists", Exit::Conflict),
                StoreError::FailureNotFound { .. } => ("FailureNotFound", Exit::NotFound),
                StoreError::TokenNotFound(_) => ("TokenNotFound", Exit::NotFound),
                StoreError::WebhookNotFound(_) => ("WebhookNotFound", Exit::NotFound),
                StoreError::Rejected(_) => ("Rejected", Exit::Rejected),
                StoreError::Conflict { .. } => ("Conflict", Exit::Conflict),
                StoreError::LeaseHeld { .. } => ("LeaseHeld", Exit::Conflict),
                StoreError::StaleLease { .. } => ("StaleLease", Exit::Conflict),
                StoreError::InvalidInput(_) => ("InvalidInput", Exit::Usage),
                StoreError::Document(_) => ("Document", Exit::BadDocument),
                StoreError::Unavailable { .. } => ("Unavailable", Exit::Unavailable),
                StoreError::Busy { .. } => ("Busy", Exit::Unavailable),
                StoreError::Backend { .. } => ("Backend", Exit::Internal),
                StoreError::Denied { .. } => ("Denied", Exit::Usage),
            },
            RunError::NothingSelected { .. } => ("NothingSelected", Exit::Usage),
            RunError::LeaseTtl { .. } => ("LeaseTtl", Exit::Usage),
            RunError::Metadata(_) => ("Metadata", Exit::Internal),
            RunError::TaskFailed(_) => ("TaskFailed", Exit::Internal),
        }
    }

    /// One error of every variant the runner can fail with goes through the one mapping
    /// (`run`, `exec`, `enqueue`, `worker` and `demo` all use it) to its documented code.
    #[test]
    fn every_runner_error_has_its_exit_code() {
        use buildstate_core::{CatalogKind, DocumentError, Name, Rejection, TextError};
        let number = || BuildNumber::new("b-1").expect("valid number");
        let store = RunError::Store;
        let cases: Vec<RunError> = vec![
            store(StoreError::BuildNotFound("x".into())),
            store(StoreError::AmbiguousRef { reference: "r".into(), count: 2, candidates: "a, b".into() }),
            store(StoreError::CatalogItemNotFound {
                kind: CatalogKind::Os,
                name: "x".into(),
                known: "y".into(),
            }),
            store(StoreError::CatalogItemInUse { kind: CatalogKind::Os, name: "x".into(), builds: 1 }),
            store(StoreError::AlreadyExists { what: "build", key: "k".into() }),
            store(StoreError::FailureNotFound { build: number(), number: 1 }),
            store(StoreError::TokenNotFound("ci".into())),
            store(StoreError::WebhookNotFound("0123456789ab".into())),
            store(StoreError::Rejected(Rejection::SkipDelivery { build: number() })),
            store(StoreError::Conflict { build: number(), expected: 1, found: 2 }),
            store(StoreError::LeaseHeld { build: number(), lease: Box::new(lease()) }),
            store(StoreError::StaleLease {
                build: number(),
                token: LeaseToken::first(1),
                current: Some(Box::new(lease())),
            }),
            store(StoreError::InvalidInput("bad".into())),
            store(StoreError::Document(DocumentError::Inconsistent("x".into()))),
            store(StoreError::Unavailable { location: "l".into(), reason: "r".into() }),
            store(StoreError::Denied { location: "l".into(), reason: "r".into() }),
            store(StoreError::Busy { waited_ms: 5 }),
            store(StoreError::backend("reading", std::io::Error::other("disk"))),
            RunError::NothingSelected {
                pipeline: Name::new("p").expect("valid name"),
                filter: "--only os=x".into(),
                matrix: vec!["a/b/c".into()],
            },
            RunError::LeaseTtl { given: std::time::Duration::from_secs(1) },
            RunError::Metadata(TextError::BadKey("k".into())),
            RunError::TaskFailed("panicked".into()),
        ];
        let mut named: Vec<&str> = cases.iter().map(|e| documented(e).0).collect();
        named.sort_unstable();
        named.dedup();
        assert_eq!(named.len(), cases.len(), "one case per variant: {named:?}");
        // 16 store errors + 4 of the runner's own: raise it with the new variant's case.
        assert_eq!(cases.len(), 22, "every variant of RunError and StoreError has a case");
        for e in cases {
            let (name, exit) = documented(&e);
            let message = e.to_string();
            let err = CliError::from(e);
            assert_eq!(err.exit, exit, "{name}: {message}");
            assert!(!err.to_string().is_empty(), "{name}");
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

    #[test]
    fn an_unavailable_store_is_checked_as_what_it_is() {
        let hint = |location: &str| {
            let e = StoreError::Unavailable { location: location.into(), reason: "r".into() };
            CliError::from(e).hint.unwrap_or_default()
        };
        for url in ["postgres://ci:***@db/bs?sslmode=verify-full", "PostgreSQL://db/bs"] {
            assert!(
                hint(url).starts_with("check the URL given by --db") && hint(url).contains("sslmode"),
                "{url}"
            );
        }
        assert!(hint("host=db password=*** dbname=bs").starts_with("check the connection string"));
        for path in ["/srv/bs.db", "/srv/json-store"] {
            assert_eq!(hint(path), "check the path given by --db or BUILDSTATE_DB", "{path}");
        }
    }
}
