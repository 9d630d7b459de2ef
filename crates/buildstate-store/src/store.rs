use std::time::Duration;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command, Delivery,
    DeliveryAttempt, FailureRecord, HistoryEvent, Lease, LeaseRequest, LeaseToken, Name, NewBuild,
    NewWebhook, Outcome, TokenId, TokenRecord, WebhookId, WebhookRecord, WorkerBeat, WorkerRecord,
};

use crate::report::{DurationRow, Report, ReportRequest};
use crate::{BuildFilter, FailureFilter, Guard, ImportMode, PruneRule, StoreResult, WorkerList};

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
    ///
    /// `guard` adds preconditions, checked in the same transaction as the write: with a
    /// lease token, `StaleLease` unless it is the build's current, unreleased lease
    /// (expired or not: only a take-over fences a runner out); without one, `LeaseHeld`
    /// while a lease is held and unexpired; with an expected version, `Conflict` unless
    /// the build is at that version.
    async fn apply(&self, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome>;

    /// The build's history, oldest first.
    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>>;

    // ── leases ───────────────────────────────────────────────────────────────────────
    // Expiry is judged by the store's clock (for SQLite, the clock of the machine the
    // call runs on). Lease calls do not change `Build::version`: a heartbeat is not a
    // change of the build.

    /// Leases the build to `request` until `now + ttl`. Granted when no lease is held or
    /// the held one expired (a take-over), with a token one above the last granted (1 for
    /// the first; tokens never decrease, also across release and break); `LeaseHeld`
    /// while another lease is held and unexpired. Allowed in every status: whether to
    /// run a build is the runner's decision.
    async fn acquire_lease(&self, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease>;
    /// Like [`Store::acquire_lease`], and also granted while the lease with token `dead`
    /// is held and unexpired: for a runner that saw that lease's holder is gone (its pid
    /// no longer exists on this host), so the build need not wait out the ttl. Only that
    /// exact lease is superseded: if anyone took the build over meanwhile, `LeaseHeld`.
    async fn take_over_lease(
        &self,
        id: BuildId,
        request: &LeaseRequest,
        dead: LeaseToken,
    ) -> StoreResult<Lease>;
    /// A heartbeat: extends the current lease to `now + ttl`. Only its own token renews
    /// — also after expiry, as long as nobody took over; otherwise `StaleLease`.
    async fn renew_lease(&self, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease>;
    /// Gives the lease up, so that the next runner need not wait for the expiry.
    /// Idempotent for the current token; `StaleLease` for any other.
    async fn release_lease(&self, id: BuildId, token: LeaseToken) -> StoreResult<()>;
    /// Every held (unreleased) lease, expired ones included, by build number.
    async fn leases(&self) -> StoreResult<Vec<Lease>>;
    /// Releases whatever lease is held, for a person who knows its runner is gone;
    /// returns it (`None` if none was held). Its holder's next write is `StaleLease`,
    /// and the next acquire gets the next token.
    async fn break_lease(&self, id: BuildId) -> StoreResult<Option<Lease>>;

    // ── failures, artifacts ──────────────────────────────────────────────────────────
    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>>;
    /// Marks one failure (`number`) or all unresolved failures of a build resolved, with
    /// notes; returns the records it changed. Fenced by `guard` like [`Store::apply`]:
    /// a runner's step resolves under its lease token, a person only while no runner
    /// holds the build.
    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
        guard: Guard,
    ) -> StoreResult<Vec<FailureRecord>>;
    /// Records an artifact; an artifact of the same name is replaced (re-runs are
    /// idempotent). Its `milestone` is the build's state as stored, whatever the caller
    /// passed, and it is current (`invalidated_at: None`). A rewind to that milestone or
    /// an earlier one marks it invalidated, in the rewind's transaction. Fenced by
    /// `guard` like [`Store::apply`].
    async fn add_artifact(&self, id: BuildId, artifact: &Artifact, guard: Guard) -> StoreResult<()>;
    /// Every artifact of the build, current and invalidated, in the order first recorded.
    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>>;

    // ── the worker registry ──────────────────────────────────────────────────────────
    // One record per fleet worker, by name; its times are the store's clock, like lease
    // expiry. Not a change of any build.

    /// A worker's heartbeat — also its first (`beat.starting`) and whenever it takes or
    /// finishes a build: its record now says `beat` with `last_seen` = now. Returns the
    /// record as it was before, if any (a live worker of another host or pid there means
    /// two workers share a name).
    async fn worker_beat(&self, beat: &WorkerBeat) -> StoreResult<Option<WorkerRecord>>;
    /// A clean exit of the worker of `beat`: its record is marked exited (and idle), so it
    /// is never taken for stale. A record that another process has taken over since is
    /// left alone.
    async fn worker_exited(&self, beat: &WorkerBeat) -> StoreResult<()>;
    /// Every worker heard from within `within` of the store's clock, by name, with that
    /// clock's reading.
    async fn workers(&self, within: Duration) -> StoreResult<WorkerList>;

    // ── documents ────────────────────────────────────────────────────────────────────
    /// The build as one self-contained document (SPEC §2).
    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument>;
    /// Stores a validated document, registering catalog items it names that are missing.
    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build>;

    // ── retention ────────────────────────────────────────────────────────────────────
    /// Deletes the build with its history, failures, artifacts and lease record, in one
    /// transaction, if as stored in that transaction it still satisfies `rule`
    /// ([`PruneRule::qualifies`]): one of the rule's statuses, finished before its time,
    /// no lease held (expired or not), and, if failed, no unresolved failure. Returns
    /// what was deleted, as [`Store::export_build`] would have written it then; `None`,
    /// with nothing changed, if the build no longer qualifies (changed since the caller
    /// chose it). `BuildNotFound` for an unknown build.
    async fn prune_build(&self, id: BuildId, rule: &PruneRule) -> StoreResult<Option<BuildDocument>>;

    // ── API tokens ───────────────────────────────────────────────────────────────────
    // Records only: the secret is never stored, only its SHA-256 (`crate::tokens`).

    /// Stores a new token, created now by the store's clock, and returns it as stored;
    /// `AlreadyExists` if its name (or id) is taken.
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<TokenRecord>;
    /// Every token, revoked and expired ones too, by name.
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>>;
    /// The token with this id, if any: the one lookup a request costs.
    async fn token(&self, id: &TokenId) -> StoreResult<Option<TokenRecord>>;
    /// Revokes the token with this name or id, at the store's clock, and returns it;
    /// one revoked already keeps its time. `TokenNotFound` if there is none.
    async fn revoke_token(&self, reference: &str) -> StoreResult<TokenRecord>;

    // ── webhooks ─────────────────────────────────────────────────────────────────────
    // Endpoints, and the outbox a transition writes in its own transaction: one
    // delivery per subscribed, enabled endpoint ([`buildstate_core::notices`]).

    /// Adds an endpoint, with the signing secret given or a new random one, and returns
    /// it with its secret (shown once). `InvalidInput` for a bad URL or secret, or on a
    /// store that cannot write an outbox row in a transition's transaction (JSON files).
    async fn add_webhook(&self, new: &NewWebhook) -> StoreResult<WebhookRecord>;
    /// Every endpoint, oldest first. Secrets are held only by the store's own records
    /// (a server's client gets them empty).
    async fn webhooks(&self) -> StoreResult<Vec<WebhookRecord>>;
    /// Removes the endpoint with this id, with its deliveries, and returns it;
    /// `WebhookNotFound` if there is none.
    async fn remove_webhook(&self, id: &str) -> StoreResult<WebhookRecord>;
    /// Deliveries, newest first: of one endpoint if given, at most `limit`.
    async fn deliveries(&self, webhook: Option<&WebhookId>, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// Up to `limit` pending deliveries due now (oldest due first) of enabled
    /// endpoints, each with its endpoint, held for `hold`: their next attempt moves to
    /// now + `hold`, so that another server sharing the store does not send them too,
    /// and a sender that dies mid-attempt leaves them to be sent again after `hold`.
    async fn claim_deliveries(
        &self,
        limit: usize,
        hold: Duration,
    ) -> StoreResult<Vec<(Delivery, WebhookRecord)>>;
    /// Records one attempt of a delivery ([`Delivery::after_attempt`] at `pace`)
    /// and counts it on its endpoint ([`WebhookRecord::after_attempt`]); the
    /// delivery as it now stands, or `None` if it or its endpoint was removed meanwhile.
    async fn record_delivery(
        &self,
        webhook: &WebhookId,
        event_id: &str,
        attempt: &DeliveryAttempt,
        pace: buildstate_core::RetryPace,
    ) -> StoreResult<Option<Delivery>>;

    // ── reports ──────────────────────────────────────────────────────────────────────
    /// Completed attempts over all builds per milestone and fine (1 %) duration
    /// bucket, with their exact total: what `/metrics` makes its histogram of.
    async fn duration_buckets(&self) -> StoreResult<Vec<DurationRow>>;
    /// Computes a report (`crate::report`) on one consistent snapshot of the store.
    async fn report(&self, request: &ReportRequest) -> StoreResult<Report>;
}
