//! `SyncedStore`: any `Store`, with every change to a build copied to object storage.
//!
//! It wraps the store rather than living in each backend: after a write succeeds it
//! exports the build and pushes the document. The push is bounded in time by the
//! `Syncer` (a few seconds by default) and a failing endpoint puts the document in the
//! backlog instead of failing the write — the local transition is the truth and never
//! waits on, or is corrupted by, a copy. A copy that is newer than ours is never
//! overwritten (the push reports it, and we log it).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command, FailureRecord,
    HistoryEvent, Lease, LeaseRequest, LeaseToken, Name, NewBuild, Outcome, WorkerBeat, WorkerRecord,
};
use buildstate_store::report::{Report, ReportRequest};
use buildstate_store::{
    BuildFilter, FailureFilter, Guard, ImportMode, PruneRule, Store, StoreResult, WorkerList,
};

use crate::{PushOutcome, Syncer};

#[derive(Debug)]
pub struct SyncedStore {
    inner: Arc<dyn Store>,
    syncer: Arc<Syncer>,
}

impl SyncedStore {
    pub fn new(inner: Arc<dyn Store>, syncer: Arc<Syncer>) -> Self {
        SyncedStore { inner, syncer }
    }

    pub fn syncer(&self) -> &Syncer {
        &self.syncer
    }

    /// Copies build `id` after a change. Never fails the caller's write.
    async fn copy(&self, id: BuildId) {
        let doc = match self.inner.export_build(id).await {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!(build = %id, error = %e, "cannot export the build for its object-storage copy");
                return;
            }
        };
        match self.syncer.push(&doc).await {
            Ok(PushOutcome::Pushed { .. } | PushOutcome::AlreadyThere) => self.drain_backlog().await,
            Ok(PushOutcome::Backlogged { error }) => tracing::warn!(
                build = %doc.build_number,
                %error,
                "object storage unreachable; the copy waits in the backlog (`buildstate sync push` retries)"
            ),
            Ok(other) => tracing::warn!(
                build = %doc.build_number,
                "the remote copy was not replaced: {}; see `buildstate sync status`",
                describe(&other)
            ),
            Err(e) => {
                tracing::warn!(build = %doc.build_number, error = %e, "cannot copy the build to object storage")
            }
        }
    }

    /// The endpoint answered: push what waited for it.
    async fn drain_backlog(&self) {
        if self.syncer.backlog().map(|b| b.is_empty()).unwrap_or(true) {
            return;
        }
        if let Err(e) = self.syncer.flush_backlog().await {
            tracing::warn!(error = %e, "cannot push the backlog");
        }
    }
}

#[async_trait]
impl Store for SyncedStore {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn add_catalog_item(&self, item: &CatalogItem) -> StoreResult<()> {
        self.inner.add_catalog_item(item).await
    }

    async fn catalog(&self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.inner.catalog(kind).await
    }

    async fn catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
        self.inner.catalog_item(kind, name).await
    }

    async fn remove_catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        self.inner.remove_catalog_item(kind, name).await
    }

    async fn create_build(&self, new: &NewBuild) -> StoreResult<Build> {
        let build = self.inner.create_build(new).await?;
        self.copy(build.id).await;
        Ok(build)
    }

    async fn build(&self, id: BuildId) -> StoreResult<Build> {
        self.inner.build(id).await
    }

    async fn find_build(&self, reference: &str) -> StoreResult<Build> {
        self.inner.find_build(reference).await
    }

    async fn list_builds(&self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        self.inner.list_builds(filter).await
    }

    async fn apply(&self, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
        let outcome = self.inner.apply(id, command, guard).await?;
        self.copy(id).await;
        Ok(outcome)
    }

    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.inner.history(id).await
    }

    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        self.inner.failures(filter).await
    }

    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
        guard: Guard,
    ) -> StoreResult<Vec<FailureRecord>> {
        let changed = self.inner.resolve_failures(id, number, notes, guard).await?;
        if !changed.is_empty() {
            self.copy(id).await;
        }
        Ok(changed)
    }

    async fn add_artifact(&self, id: BuildId, artifact: &Artifact, guard: Guard) -> StoreResult<()> {
        self.inner.add_artifact(id, artifact, guard).await?;
        self.copy(id).await;
        Ok(())
    }

    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.inner.artifacts(id).await
    }

    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument> {
        self.inner.export_build(id).await
    }

    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build> {
        let build = self.inner.import_build(parts, mode).await?;
        self.copy(build.id).await;
        Ok(build)
    }

    async fn acquire_lease(&self, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
        self.inner.acquire_lease(id, request).await
    }

    async fn take_over_lease(
        &self,
        id: BuildId,
        request: &LeaseRequest,
        dead: LeaseToken,
    ) -> StoreResult<Lease> {
        self.inner.take_over_lease(id, request, dead).await
    }

    async fn renew_lease(&self, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
        self.inner.renew_lease(id, token, ttl).await
    }

    async fn release_lease(&self, id: BuildId, token: LeaseToken) -> StoreResult<()> {
        self.inner.release_lease(id, token).await
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.inner.leases().await
    }

    async fn break_lease(&self, id: BuildId) -> StoreResult<Option<Lease>> {
        self.inner.break_lease(id).await
    }

    // The worker registry is not part of any build's document: nothing to copy.
    async fn worker_beat(&self, beat: &WorkerBeat) -> StoreResult<Option<WorkerRecord>> {
        self.inner.worker_beat(beat).await
    }

    async fn worker_exited(&self, beat: &WorkerBeat) -> StoreResult<()> {
        self.inner.worker_exited(beat).await
    }

    async fn workers(&self, within: Duration) -> StoreResult<WorkerList> {
        self.inner.workers(within).await
    }

    // Tokens are not part of any build's copy: they stay in the store they were made in.
    async fn create_token(
        &self,
        token: &buildstate_core::TokenRecord,
    ) -> StoreResult<buildstate_core::TokenRecord> {
        self.inner.create_token(token).await
    }

    async fn tokens(&self) -> StoreResult<Vec<buildstate_core::TokenRecord>> {
        self.inner.tokens().await
    }

    async fn token(
        &self,
        id: &buildstate_core::TokenId,
    ) -> StoreResult<Option<buildstate_core::TokenRecord>> {
        self.inner.token(id).await
    }

    async fn revoke_token(&self, reference: &str) -> StoreResult<buildstate_core::TokenRecord> {
        self.inner.revoke_token(reference).await
    }

    async fn report(&self, request: &ReportRequest) -> StoreResult<Report> {
        self.inner.report(request).await
    }

    async fn duration_buckets(&self) -> StoreResult<Vec<buildstate_store::report::DurationRow>> {
        self.inner.duration_buckets().await
    }

    // Webhooks and their outbox, like tokens, stay in the store they were made in.
    async fn add_webhook(
        &self,
        new: &buildstate_core::NewWebhook,
    ) -> StoreResult<buildstate_core::WebhookRecord> {
        self.inner.add_webhook(new).await
    }

    async fn webhooks(&self) -> StoreResult<Vec<buildstate_core::WebhookRecord>> {
        self.inner.webhooks().await
    }

    async fn remove_webhook(&self, id: &str) -> StoreResult<buildstate_core::WebhookRecord> {
        self.inner.remove_webhook(id).await
    }

    async fn deliveries(
        &self,
        webhook: Option<&buildstate_core::WebhookId>,
        limit: usize,
    ) -> StoreResult<Vec<buildstate_core::Delivery>> {
        self.inner.deliveries(webhook, limit).await
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        hold: Duration,
    ) -> StoreResult<Vec<(buildstate_core::Delivery, buildstate_core::WebhookRecord)>> {
        self.inner.claim_deliveries(limit, hold).await
    }

    async fn record_delivery(
        &self,
        webhook: &buildstate_core::WebhookId,
        event_id: &str,
        attempt: &buildstate_core::DeliveryAttempt,
        pace: buildstate_core::RetryPace,
    ) -> StoreResult<Option<buildstate_core::Delivery>> {
        self.inner.record_delivery(webhook, event_id, attempt, pace).await
    }

    // The object-storage copy of a pruned build stays: retention here is this store's;
    // the bucket's is its own (lifecycle rules), and the copy is what remains to restore.
    async fn prune_build(&self, id: BuildId, rule: &PruneRule) -> StoreResult<Option<BuildDocument>> {
        self.inner.prune_build(id, rule).await
    }
}

/// A push outcome in words, for people (never Rust debug text).
fn describe(outcome: &PushOutcome) -> String {
    match outcome {
        PushOutcome::Pushed { .. } | PushOutcome::AlreadyThere => "it is up to date".to_owned(),
        PushOutcome::RemoteNewer { local_version, remote_version } => {
            format!("the copy is newer (version {remote_version}, here {local_version}); pull it")
        }
        PushOutcome::Diverged { local_version, remote_version } => format!(
            "another machine continued this build from the same copy (there version {remote_version}, here {local_version}); keep one line"
        ),
        PushOutcome::OtherBuild { remote_build_id } => {
            format!("the path holds another build ({remote_build_id})")
        }
        PushOutcome::Backlogged { error } => format!("kept in the backlog: {error}"),
    }
}
