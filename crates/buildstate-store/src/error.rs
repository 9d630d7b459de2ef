use buildstate_core::{BuildNumber, CatalogKind, DocumentError, Lease, LeaseToken, Rejection};

use crate::lease::{show_time, stale_message};

pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong in a store. Callers branch on the variant (the CLI maps each to an
/// exit code); the message is a lowercase fragment that says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no build matches `{0}`; list builds with `buildstate build list`")]
    BuildNotFound(String),
    #[error("`{reference}` matches {count} builds ({candidates}); give more of the id or build number")]
    AmbiguousRef { reference: String, count: usize, candidates: String },
    #[error(
        "{kind} `{name}` is not in the catalog (known: {known}); add it with `buildstate {kind} add {name} …`"
    )]
    CatalogItemNotFound { kind: CatalogKind, name: String, known: String },
    #[error("{kind} `{name}` is used by {builds} build(s); it cannot be removed while builds refer to it")]
    CatalogItemInUse { kind: CatalogKind, name: String, builds: u64 },
    #[error("no token matches `{0}`; list tokens with `buildstate token list`")]
    TokenNotFound(String),
    #[error("no webhook has id `{0}`; list them with `buildstate webhook list`")]
    WebhookNotFound(String),
    #[error("{what} `{key}` already exists")]
    AlreadyExists { what: &'static str, key: String },
    #[error("build {build} has no failure number {number}; see `buildstate failure list --build {build}`")]
    FailureNotFound { build: BuildNumber, number: u32 },
    /// The transition rules refused the command; nothing was written.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Optimistic concurrency: the build moved on since the caller read it.
    #[error(
        "build {build} was changed by another writer (expected version {expected}, found {found}); read it again and retry"
    )]
    Conflict { build: BuildNumber, expected: u64, found: u64 },
    /// A write without a lease token, or a lease request, on a build whose lease another
    /// runner holds and has not let expire. Nothing was written.
    #[error(
        "build {build} is being run by {holder} until {until}; wait for it, or `buildstate lease break {build}`",
        holder = .lease.holder(),
        until = show_time(.lease.expires_at)
    )]
    // Boxed: a `Lease` inline would make every `StoreResult` large.
    LeaseHeld { build: BuildNumber, lease: Box<Lease> },
    /// A write or lease call under a token that is no longer the build's current lease:
    /// another runner took the build over, or the lease was released or broken. The
    /// caller has lost the build and must stop; nothing was written.
    #[error("{}", stale_message(.build, .token, .current.as_deref()))]
    StaleLease { build: BuildNumber, token: LeaseToken, current: Option<Box<Lease>> },
    /// Bad caller input that the types could not rule out (catalog, artifact fields).
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The store cannot be opened or used as it is (newer schema, changed migration, …).
    #[error("the store at {location} cannot be used: {reason}")]
    Unavailable { location: String, reason: String },
    /// A server (`--server`) refused the caller: no valid token, or one without the
    /// scope the request needs. Nothing was written.
    #[error("the server at {location} refused the request: {reason}")]
    Denied { location: String, reason: String },
    /// Lock contention that outlasted the store's patience.
    #[error("the store stayed busy for {waited_ms} ms; try again")]
    Busy { waited_ms: u64 },
    /// A fault of the backend itself (I/O, driver, corrupt row).
    #[error("storage error: {context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn backend(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend { context, source: Box::new(source) }
    }
}
