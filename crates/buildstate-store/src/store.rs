use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command, FailureRecord,
    HistoryEvent, Name, NewBuild, Outcome,
};

use crate::{BuildFilter, FailureFilter, ImportMode, StoreResult};

/// The one way to read and change buildstate data.
///
/// Async, object-safe (`Arc<dyn Store>`) and `Send + Sync`, so that the same contract
/// serves a one-shot CLI, a long-running runner and an HTTP server, and admits network
/// backends (PostgreSQL, object storage) as well as the embedded one.
///
/// Every method is atomic: it either happens whole or not at all. Every change to a
/// build bumps `Build::version`.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the store lives, for messages (`/home/me/.local/share/buildstate/buildstate.db`).
    fn location(&self) -> String;

    // ── catalog ──────────────────────────────────────────────────────────────────────
    /// Adds an item; `AlreadyExists` if the name is taken within its kind.
    async fn add_catalog_item(&self, item: &CatalogItem) -> StoreResult<()>;
    /// All items of a kind, by name.
    async fn catalog(&self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>>;
    async fn catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem>;
    /// Removes an item no build refers to (`CatalogItemInUse` otherwise).
    async fn remove_catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<()>;

    // ── builds ───────────────────────────────────────────────────────────────────────
    /// Creates a build at state 0, pending. Platform, OS and image type must be in the
    /// catalog. Without a chosen number, allocates `<os>-<image>-<platform>-<yyyymmdd>-NNN`
    /// (UTC date), unique even for concurrent creates in the same second.
    async fn create_build(&self, new: &NewBuild) -> StoreResult<Build>;
    async fn build(&self, id: BuildId) -> StoreResult<Build>;
    /// Resolves a reference: a full id, a build number, or a unique prefix of either.
    async fn find_build(&self, reference: &str) -> StoreResult<Build>;
    async fn list_builds(&self, filter: &BuildFilter) -> StoreResult<Vec<Build>>;

    /// Runs `command` through the transition rules on the build as stored and writes the
    /// outcome (new build row, appended history, failure records) in one transaction.
    /// With `expected_version`, refuses with `Conflict` unless the build is at that version.
    async fn apply(
        &self,
        id: BuildId,
        command: &Command,
        expected_version: Option<u64>,
    ) -> StoreResult<Outcome>;

    /// The build's history, oldest first.
    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>>;

    // ── failures, artifacts ──────────────────────────────────────────────────────────
    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>>;
    /// Marks one failure (`number`) or all unresolved failures of a build resolved, with
    /// notes; returns the records it changed.
    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
    ) -> StoreResult<Vec<FailureRecord>>;
    /// Records an artifact; an artifact of the same name is replaced (re-runs are idempotent).
    async fn add_artifact(&self, id: BuildId, artifact: &Artifact) -> StoreResult<()>;
    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>>;

    // ── documents ────────────────────────────────────────────────────────────────────
    /// The build as one self-contained document (SPEC §2).
    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument>;
    /// Stores a validated document, registering catalog items it names that are missing.
    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build>;
}
