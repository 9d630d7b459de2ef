//! The primitives a backend implements. Everything above them — create and numbering,
//! find, apply, import, leases, failures, artifacts, the worker registry — is written
//! once, in this module's siblings, and every backend gets the whole [`crate::Store`]
//! contract from them.
//!
//! A backend is two things:
//!
//! - a [`Backend`]: runs one unit of work in one transaction, committed if the work
//!   succeeds and rolled back if it fails, retried whole on contention it can see
//!   (SQLite's busy lock, PostgreSQL's serialization failures). It decides *where* the
//!   work runs: blocking backends (SQLite, `flock`ed files) on a blocking thread, never
//!   on the async threads that drive heartbeats and output pumps;
//! - a [`Tx`]: the reads and writes of one transaction, each a small, dumb primitive
//!   (load a row, compare-and-swap a row on `version`, append records). A primitive
//!   never decides a rule.
//!
//! `docs/ARCHITECTURE.md` shows how each primitive maps onto SQL, JSON files, and stores
//! that only have conditional writes (DynamoDB, Cosmos DB).

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, CatalogItem, CatalogKind, Delivery, EventKind, FailureRecord,
    HistoryEvent, Lease, Name, StateCode, TokenId, TokenRecord, WebhookId, WebhookRecord, WorkerRecord,
};
use jiff::Timestamp;

use crate::report::{
    BuildCount, DurationRow, FailureGroup, Group, ReportFilter, SAVING_EVENTS, STAT_EVENTS, Saving, StatRow,
    aggregate, group_failures, savings_in_memory,
};
use crate::{BuildFilter, FailureFilter, LeaseRecord, StoreError, StoreResult, sequence_of};

/// What a store without webhooks answers when asked to keep one.
fn no_webhooks() -> StoreError {
    StoreError::InvalidInput(
        "this store cannot hold webhooks: a JSON-file store cannot write an event in the same \
         transaction as its build document; use an SQLite or PostgreSQL store (`--db`) for webhooks"
            .into(),
    )
}

/// What a unit of work needs from its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One consistent snapshot; no write primitive is called.
    Read,
    /// Exclusive of every other writer of the same rows from the first read on, so the
    /// rules run on what is stored (SQLite `BEGIN IMMEDIATE`, PostgreSQL row locks taken
    /// by [`Tx::build`] in this mode, the files' exclusive `flock`). Backends without
    /// locks rely on [`Tx::swap_build`]'s compare-and-swap instead.
    Write,
}

/// The future of a unit of work, borrowing its transaction for `'t`.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 't>>;

/// A unit of work: may run more than once (a retry after contention runs it again from
/// scratch on a fresh transaction), so it owns its inputs.
pub type Work<T> = Box<dyn for<'t> FnMut(&'t mut dyn Tx) -> TxFuture<'t, T> + Send>;

/// Runs units of work in transactions. Implementing this (and [`Tx`]) is all a backend
/// does; `impl<B: Backend> Store for B` supplies the rest.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Where the store lives, for messages, with any password hidden.
    fn location(&self) -> String;

    /// Runs `work` in one transaction of `mode`: all of its writes commit together, or
    /// none does. `what` names the work in logs.
    async fn transact<T: Send + 'static>(
        &self,
        mode: Mode,
        what: &'static str,
        work: Work<T>,
    ) -> StoreResult<T>;
}

/// The primitives of one transaction. Reads return `None` or empty for what does not
/// exist; the engine turns that into the right error. Writes store exactly what they
/// are given: validation happened above.
#[async_trait]
pub trait Tx: Send {
    /// The store's clock, in whole microseconds: what lease expiry and every recorded
    /// time are judged by. A network backend answers with the server's clock, so that
    /// workers whose clocks disagree still agree on who holds a lease. Default: this
    /// machine's clock ([`crate::now`]), right for embedded stores.
    async fn now(&mut self) -> StoreResult<Timestamp> {
        Ok(crate::now())
    }

    // ── catalog ──────────────────────────────────────────────────────────────────────
    /// Every item of `kind`, by name.
    async fn catalog(&mut self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>>;
    async fn catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>>;
    /// Inserts an item whose name the engine found free in this transaction.
    async fn insert_catalog_item(&mut self, item: &CatalogItem) -> StoreResult<()>;
    async fn delete_catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<()>;
    /// How many builds refer to the item.
    async fn builds_using(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<u64>;

    // ── builds ───────────────────────────────────────────────────────────────────────
    /// The build row. In [`Mode::Write`] a locking backend locks it here.
    async fn build(&mut self, id: BuildId) -> StoreResult<Option<Build>>;
    async fn build_id_by_number(&mut self, number: &str) -> StoreResult<Option<BuildId>>;
    /// Builds whose id starts with `id_prefix` or whose number starts with
    /// `number_prefix` (plain prefixes: `_`, `%` and `.` mean only themselves).
    async fn prefix_candidates(
        &mut self,
        id_prefix: &str,
        number_prefix: &str,
    ) -> StoreResult<Vec<(BuildId, BuildNumber)>>;
    /// Builds matching `filter` ([`BuildFilter::matches`]), newest first (ties: the
    /// larger id first), at most `filter.limit`.
    async fn list_builds(&mut self, filter: &BuildFilter) -> StoreResult<Vec<Build>>;
    /// Every build number that starts with `stem`.
    async fn numbers_under(&mut self, stem: &str) -> StoreResult<Vec<String>>;
    /// The next free sequence number under `stem`: one above the highest taken (numbers
    /// chosen by hand included), from 1. A store with a counter item per stem (DynamoDB)
    /// overrides this with an atomic increment.
    async fn next_sequence(&mut self, stem: &str) -> StoreResult<Option<u32>> {
        let taken = self.numbers_under(stem).await?;
        // Numerically, not as text: "…-1000" sorts before "…-999".
        let highest = taken.iter().filter_map(|n| sequence_of(n, stem)).max().unwrap_or(0);
        Ok(highest.checked_add(1))
    }
    async fn insert_build(&mut self, build: &Build) -> StoreResult<()>;
    /// Replaces the build row if it is still at `expected_version`; `false` (and nothing
    /// written) if another writer moved it.
    async fn swap_build(&mut self, build: &Build, expected_version: u64) -> StoreResult<bool>;
    /// Deletes the build with everything that hangs off it, its lease record included
    /// (the engine puts the record back when it replaces a build, so that tokens never
    /// go back).
    async fn delete_build(&mut self, id: BuildId) -> StoreResult<()>;

    // ── what hangs off a build ───────────────────────────────────────────────────────
    /// The build's history, oldest first.
    async fn history(&mut self, id: BuildId) -> StoreResult<Vec<HistoryEvent>>;
    async fn append_events(&mut self, id: BuildId, events: &[HistoryEvent]) -> StoreResult<()>;
    /// Failure records matching `filter` ([`FailureFilter::matches`]), newest first
    /// (ties: larger number, then larger build id, first), at most `filter.limit`.
    async fn failures(&mut self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>>;
    async fn insert_failures(&mut self, failures: &[FailureRecord]) -> StoreResult<()>;
    /// Writes the resolution fields of an existing record.
    async fn update_failure(&mut self, failure: &FailureRecord) -> StoreResult<()>;
    /// The build's artifacts, in the order they were first recorded.
    async fn artifacts(&mut self, id: BuildId) -> StoreResult<Vec<Artifact>>;
    /// Inserts the artifact, or replaces the one of the same name in place.
    async fn put_artifact(&mut self, id: BuildId, artifact: &Artifact) -> StoreResult<()>;

    // ── leases ───────────────────────────────────────────────────────────────────────
    async fn lease(&mut self, id: BuildId) -> StoreResult<Option<LeaseRecord>>;
    async fn put_lease(&mut self, record: &LeaseRecord) -> StoreResult<()>;
    /// Every unreleased lease of a build that exists, with the build's number.
    async fn held_leases(&mut self) -> StoreResult<Vec<(BuildNumber, Lease)>>;

    // ── the worker registry ──────────────────────────────────────────────────────────
    /// The record of the worker named `name`.
    async fn worker(&mut self, name: &str) -> StoreResult<Option<WorkerRecord>>;
    /// Inserts the record, or replaces the one of the same name.
    async fn put_worker(&mut self, record: &WorkerRecord) -> StoreResult<()>;
    /// Every record whose `last_seen` is at or after `since`, in any order.
    async fn workers_seen_since(&mut self, since: Timestamp) -> StoreResult<Vec<WorkerRecord>>;
    /// Deletes every record whose `last_seen` is before `before`.
    async fn forget_workers(&mut self, before: Timestamp) -> StoreResult<()>;

    // ── API tokens ───────────────────────────────────────────────────────────────────
    /// Every token record, in any order (a store has a few).
    async fn tokens(&mut self) -> StoreResult<Vec<TokenRecord>>;
    /// The record with this id.
    async fn token(&mut self, id: &TokenId) -> StoreResult<Option<TokenRecord>>;
    /// Inserts the record, or replaces the one with the same id.
    async fn put_token(&mut self, record: &TokenRecord) -> StoreResult<()>;

    // ── webhooks ─────────────────────────────────────────────────────────────────────
    // The defaults are a store without webhooks: one that cannot write an outbox row in
    // a transition's transaction (JSON files, whose documents are separate files) holds
    // no endpoint, so no transition ever has a delivery to write.

    /// Every endpoint, in any order (a store has a few).
    async fn webhooks(&mut self) -> StoreResult<Vec<WebhookRecord>> {
        Ok(Vec::new())
    }
    /// Inserts the endpoint, or replaces the one with the same id.
    async fn put_webhook(&mut self, _record: &WebhookRecord) -> StoreResult<()> {
        Err(no_webhooks())
    }
    /// Deletes the endpoint and its deliveries.
    async fn delete_webhook(&mut self, _id: &WebhookId) -> StoreResult<()> {
        Err(no_webhooks())
    }
    /// Inserts outbox rows; one whose endpoint and event id are already there is left
    /// as it is.
    async fn insert_deliveries(&mut self, deliveries: &[Delivery]) -> StoreResult<()> {
        if deliveries.is_empty() { Ok(()) } else { Err(no_webhooks()) }
    }
    async fn delivery(&mut self, _webhook: &WebhookId, _event_id: &str) -> StoreResult<Option<Delivery>> {
        Ok(None)
    }
    /// Deliveries, of one endpoint if given, newest first (ties: larger event id
    /// first), at most `limit`.
    async fn deliveries(
        &mut self,
        _webhook: Option<&WebhookId>,
        _limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        Ok(Vec::new())
    }
    /// Pending deliveries whose next attempt is due at `at`, earliest due first, at most
    /// `limit`.
    async fn due_deliveries(&mut self, _at: Timestamp, _limit: usize) -> StoreResult<Vec<Delivery>> {
        Ok(Vec::new())
    }
    /// Writes the state, next attempt and attempts of an existing delivery.
    async fn put_delivery(&mut self, _delivery: &Delivery) -> StoreResult<()> {
        Err(no_webhooks())
    }
    /// Marks every pending delivery of the endpoint failed (it was disabled).
    async fn give_up_deliveries(&mut self, _webhook: &WebhookId) -> StoreResult<()> {
        Err(no_webhooks())
    }

    // ── reports ──────────────────────────────────────────────────────────────────────
    // What `crate::report` computes every report from. The defaults are built on the
    // primitives above, in memory: right for small stores (JSON files) and for any new
    // backend until it answers them natively. SQL backends run them in the database.

    /// Every build matching `filter`, in any order.
    async fn report_builds(&mut self, filter: &ReportFilter) -> StoreResult<Vec<Build>> {
        let mut builds = self.list_builds(&filter.base()).await?;
        builds.retain(|b| filter.matches(b));
        Ok(builds)
    }

    /// The latest build (by creation time, then id) of each platform × OS × image type
    /// among those matching `filter`, in any order.
    async fn latest_builds(&mut self, filter: &ReportFilter) -> StoreResult<Vec<Build>> {
        Ok(crate::report::latest_of(self.report_builds(filter).await?))
    }

    /// Builds matching `filter`, counted by `by`, status and `needs_intervention`; only
    /// non-zero counts, in any order.
    async fn count_builds(&mut self, filter: &ReportFilter, by: Group) -> StoreResult<Vec<BuildCount>> {
        Ok(crate::report::count_in_memory(&self.report_builds(filter).await?, by))
    }

    /// The events of `kinds` of every build matching `filter`, by build id, then `seq`.
    async fn report_events(
        &mut self,
        filter: &ReportFilter,
        kinds: &[EventKind],
    ) -> StoreResult<Vec<(BuildId, HistoryEvent)>> {
        let mut ids: Vec<BuildId> = self.report_builds(filter).await?.iter().map(|b| b.id).collect();
        ids.sort();
        let mut events = Vec::new();
        for id in ids {
            let history = self.history(id).await?;
            events.extend(history.into_iter().filter(|e| kinds.contains(&e.kind)).map(|e| (id, e)));
        }
        Ok(events)
    }

    /// Every failure record of the builds matching `filter`, in any order.
    async fn report_failures(&mut self, filter: &ReportFilter) -> StoreResult<Vec<FailureRecord>> {
        let mut records = Vec::new();
        for b in self.report_builds(filter).await? {
            if b.failure_count > 0 {
                let of_build = FailureFilter { build: Some(b.id), ..FailureFilter::default() };
                records.extend(self.failures(&of_build).await?);
            }
        }
        Ok(records)
    }

    /// The distinct catalogs of the builds that have their own (not the default one).
    async fn custom_catalogs(&mut self) -> StoreResult<Vec<buildstate_core::StateCatalog>> {
        let mut found: Vec<buildstate_core::StateCatalog> = Vec::new();
        for b in self.report_builds(&ReportFilter::default()).await? {
            if !b.catalog.is_default() && !found.contains(&b.catalog) {
                found.push(b.catalog);
            }
        }
        Ok(found)
    }

    /// The failure records of the builds matching `filter`, grouped by milestone and
    /// type ([`crate::report::group_failures`]), in any order.
    async fn failure_groups(&mut self, filter: &ReportFilter) -> StoreResult<Vec<FailureGroup>> {
        Ok(group_failures(self.report_failures(filter).await?))
    }

    /// The platform and the time from first start to delivery (ms) of every delivered
    /// build among those matching `filter`, in any order.
    async fn delivery_times(&mut self, filter: &ReportFilter) -> StoreResult<Vec<(Name, u64)>> {
        let builds = self.report_builds(filter).await?;
        Ok(builds
            .into_iter()
            .filter(|b| b.status == buildstate_core::BuildStatus::Completed)
            .map(|b| (b.platform.clone(), crate::report::delivery_ms(b.started_at, b.ended_at)))
            .collect())
    }

    /// The attempt statistics of the builds matching `filter`, in any order. Default:
    /// computed from their histories ([`crate::report::aggregate`]).
    async fn attempt_stats(&mut self, filter: &ReportFilter) -> StoreResult<Vec<StatRow>> {
        let builds = self.report_builds(filter).await?;
        let events = self.report_events(filter, STAT_EVENTS).await?;
        Ok(aggregate(&builds, events))
    }

    /// The completed attempts of the builds matching `filter`, per milestone and fine
    /// duration bucket. Default: from the histories.
    async fn duration_histogram(&mut self, filter: &ReportFilter) -> StoreResult<Vec<DurationRow>> {
        let events = self.report_events(filter, &[buildstate_core::EventKind::Completed]).await?;
        let events: Vec<HistoryEvent> = events.into_iter().map(|(_, e)| e).collect();
        Ok(crate::report::sum_durations(crate::report::durations_of(&events)))
    }

    /// Adds the deltas `rows` to the stored duration histogram.
    async fn add_duration_histogram(&mut self, _rows: &[DurationRow]) -> StoreResult<()> {
        Ok(())
    }

    /// What resuming saved each build matching `filter` that was resumed (see
    /// `report::resume_savings`), in any order. Default: from the histories.
    async fn resume_savings(&mut self, filter: &ReportFilter) -> StoreResult<Vec<Saving>> {
        let builds = self.report_builds(filter).await?;
        let events = self.report_events(filter, SAVING_EVENTS).await?;
        Ok(savings_in_memory(&builds, events))
    }

    /// The attempt statistics of the builds matching `filter`, summed per milestone and
    /// kind (and platform, with `by_platform`). Default: from [`Tx::attempt_stats`].
    async fn attempt_totals(
        &mut self,
        filter: &ReportFilter,
        by_platform: bool,
    ) -> StoreResult<Vec<crate::report::StatTotal>> {
        Ok(crate::report::totals(self.attempt_stats(filter).await?, by_platform))
    }

    /// The p50 and p90 (their coarse buckets) of every build's completed attempts, per
    /// milestone for each of `cells` and over all cells: what ETAs read. Default: from
    /// [`Tx::attempt_stats`].
    async fn eta_percentiles(
        &mut self,
        cells: &[crate::report::CellKey],
    ) -> StoreResult<crate::report::EtaPercentiles> {
        Ok(crate::report::eta_percentiles_of(self.attempt_stats(&ReportFilter::default()).await?, cells))
    }

    /// The failure messages of the transient failures of the builds matching `filter`,
    /// counted per milestone and message.
    async fn transient_messages(
        &mut self,
        filter: &ReportFilter,
    ) -> StoreResult<Vec<(StateCode, String, u64)>> {
        let mut counts: std::collections::BTreeMap<(StateCode, String), u64> = Default::default();
        for f in self.report_failures(filter).await? {
            if f.info.class == buildstate_core::FailureClass::Transient {
                *counts.entry((f.state, f.info.message)).or_default() += 1;
            }
        }
        Ok(counts.into_iter().map(|((s, m), n)| (s, m, n)).collect())
    }

    /// Whether the backend stores report statistics (attempt statistics and resume
    /// savings), which the engine then keeps up to date through
    /// [`Tx::add_attempt_stats`] and [`Tx::add_resume_savings`]. Default: no (they are
    /// computed on read).
    fn keeps_report_stats(&self) -> bool {
        false
    }

    /// Adds resumes and the time they saved to the build's savings.
    async fn add_resume_savings(&mut self, _id: BuildId, _resumes: u32, _saved_ms: u64) -> StoreResult<()> {
        Ok(())
    }

    /// Adds the deltas `rows` (sums per key, negative for what is taken away) to the
    /// stored statistics.
    async fn add_attempt_stats(&mut self, _rows: &[StatRow]) -> StoreResult<()> {
        Ok(())
    }
}
