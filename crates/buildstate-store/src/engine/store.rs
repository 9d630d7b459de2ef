//! Every backend is a `Store`: each method is one unit of work of the engine, run in one
//! transaction by the backend.

use std::time::Duration;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command, Delivery,
    DeliveryAttempt, FailureRecord, HistoryEvent, Lease, LeaseRequest, LeaseToken, Name, NewBuild,
    NewWebhook, Outcome, TokenId, TokenRecord, WebhookId, WebhookRecord, WorkerBeat, WorkerRecord,
};

use super::{
    Backend, Mode, builds, catalog, documents, leases, prune, records, tokens, webhooks, work, workers,
};
use crate::report::{Report, ReportRequest};
use crate::{BuildFilter, FailureFilter, Guard, ImportMode, PruneRule, Store, StoreResult, WorkerList};

use Mode::{Read, Write};

#[async_trait]
impl<B: Backend> Store for B {
    fn location(&self) -> String {
        Backend::location(self)
    }

    async fn add_catalog_item(&self, item: &CatalogItem) -> StoreResult<()> {
        let w = work(item.clone(), |tx, item| Box::pin(catalog::add(tx, item)));
        self.transact(Write, "add a catalog item", w).await
    }

    async fn catalog(&self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.transact(Read, "list the catalog", work(kind, |tx, kind| tx.catalog(*kind))).await
    }

    async fn catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
        let w = work((kind, name.clone()), |tx, (kind, name)| Box::pin(catalog::get(tx, *kind, name)));
        self.transact(Read, "read a catalog item", w).await
    }

    async fn remove_catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        let w = work((kind, name.clone()), |tx, (kind, name)| Box::pin(catalog::remove(tx, *kind, name)));
        self.transact(Write, "remove a catalog item", w).await
    }

    async fn create_build(&self, new: &NewBuild) -> StoreResult<Build> {
        let w = work(new.clone(), |tx, new| Box::pin(builds::create(tx, new)));
        self.transact(Write, "create a build", w).await
    }

    async fn build(&self, id: BuildId) -> StoreResult<Build> {
        self.transact(Read, "read a build", work(id, |tx, id| Box::pin(builds::get(tx, *id)))).await
    }

    async fn find_build(&self, reference: &str) -> StoreResult<Build> {
        let w = work(reference.to_owned(), |tx, r| Box::pin(builds::find(tx, r)));
        self.transact(Read, "find a build", w).await
    }

    async fn list_builds(&self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        let w = work(filter.clone(), |tx, filter| Box::pin(builds::list(tx, filter)));
        self.transact(Read, "list builds", w).await
    }

    async fn apply(&self, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
        let w = work((id, command.clone(), guard), |tx, (id, command, guard)| {
            Box::pin(builds::apply(tx, *id, command, *guard))
        });
        self.transact(Write, "apply a transition", w).await
    }

    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.transact(Read, "read a history", work(id, |tx, id| Box::pin(builds::history(tx, *id)))).await
    }

    async fn acquire_lease(&self, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
        let w = work((id, request.clone()), |tx, (id, r)| Box::pin(leases::acquire(tx, *id, r)));
        self.transact(Write, "acquire a lease", w).await
    }

    async fn take_over_lease(
        &self,
        id: BuildId,
        request: &LeaseRequest,
        dead: LeaseToken,
    ) -> StoreResult<Lease> {
        let w = work((id, request.clone(), dead), |tx, (id, r, dead)| {
            Box::pin(leases::take_over(tx, *id, r, *dead))
        });
        self.transact(Write, "take over a lease", w).await
    }

    async fn renew_lease(&self, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
        let w = work((id, token, ttl), |tx, (id, token, ttl)| Box::pin(leases::renew(tx, *id, *token, *ttl)));
        self.transact(Write, "renew a lease", w).await
    }

    async fn release_lease(&self, id: BuildId, token: LeaseToken) -> StoreResult<()> {
        let w = work((id, token), |tx, (id, token)| Box::pin(leases::release(tx, *id, *token)));
        self.transact(Write, "release a lease", w).await
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.transact(Read, "list leases", work((), |tx, ()| Box::pin(leases::held(tx)))).await
    }

    async fn break_lease(&self, id: BuildId) -> StoreResult<Option<Lease>> {
        self.transact(Write, "break a lease", work(id, |tx, id| Box::pin(leases::break_held(tx, *id)))).await
    }

    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        let w = work(filter.clone(), |tx, filter| Box::pin(records::failures(tx, filter)));
        self.transact(Read, "list failures", w).await
    }

    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
        guard: Guard,
    ) -> StoreResult<Vec<FailureRecord>> {
        let w = work((id, number, notes.to_owned(), guard), |tx, (id, number, notes, guard)| {
            Box::pin(records::resolve(tx, *id, *number, notes, *guard))
        });
        self.transact(Write, "resolve failures", w).await
    }

    async fn add_artifact(&self, id: BuildId, artifact: &Artifact, guard: Guard) -> StoreResult<()> {
        let w = work((id, artifact.clone(), guard), |tx, (id, a, guard)| {
            Box::pin(records::add_artifact(tx, *id, a, *guard))
        });
        self.transact(Write, "add an artifact", w).await
    }

    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.transact(Read, "list artifacts", work(id, |tx, id| Box::pin(records::artifacts(tx, *id)))).await
    }

    async fn worker_beat(&self, beat: &WorkerBeat) -> StoreResult<Option<WorkerRecord>> {
        let w = work(beat.clone(), |tx, beat| Box::pin(workers::beat(tx, beat)));
        self.transact(Write, "record a worker's heartbeat", w).await
    }

    async fn worker_exited(&self, beat: &WorkerBeat) -> StoreResult<()> {
        let w = work(beat.clone(), |tx, beat| Box::pin(workers::exited(tx, beat)));
        self.transact(Write, "record a worker's exit", w).await
    }

    async fn workers(&self, within: Duration) -> StoreResult<WorkerList> {
        self.transact(Read, "list workers", work(within, |tx, within| Box::pin(workers::list(tx, *within))))
            .await
    }

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<TokenRecord> {
        let w = work(token.clone(), |tx, token| Box::pin(tokens::create(tx, token)));
        self.transact(Write, "create a token", w).await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.transact(Read, "list tokens", work((), |tx, ()| Box::pin(tokens::list(tx)))).await
    }

    async fn token(&self, id: &TokenId) -> StoreResult<Option<TokenRecord>> {
        self.transact(Read, "look up a token", work(id.clone(), |tx, id| Box::pin(tokens::find(tx, id))))
            .await
    }

    async fn revoke_token(&self, reference: &str) -> StoreResult<TokenRecord> {
        let w = work(reference.to_owned(), |tx, r| Box::pin(tokens::revoke(tx, r)));
        self.transact(Write, "revoke a token", w).await
    }

    async fn add_webhook(&self, new: &NewWebhook) -> StoreResult<WebhookRecord> {
        let (id, secret) = crate::webhooks::draw()?;
        let w = work((new.clone(), id, secret), |tx, (new, id, secret)| {
            Box::pin(webhooks::add(tx, new, id, secret))
        });
        self.transact(Write, "add a webhook", w).await
    }

    async fn webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        self.transact(Read, "list webhooks", work((), |tx, ()| Box::pin(webhooks::list(tx)))).await
    }

    async fn remove_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        let w = work(id.to_owned(), |tx, id| Box::pin(webhooks::remove(tx, id)));
        self.transact(Write, "remove a webhook", w).await
    }

    async fn deliveries(&self, webhook: Option<&WebhookId>, limit: usize) -> StoreResult<Vec<Delivery>> {
        let w = work((webhook.cloned(), limit), |tx, (hook, limit)| {
            Box::pin(webhooks::deliveries(tx, hook.as_ref(), *limit))
        });
        self.transact(Read, "list webhook deliveries", w).await
    }

    async fn claim_deliveries(
        &self,
        limit: usize,
        hold: Duration,
    ) -> StoreResult<Vec<(Delivery, WebhookRecord)>> {
        let w = work((limit, hold), |tx, (limit, hold)| Box::pin(webhooks::claim(tx, *limit, *hold)));
        self.transact(Write, "claim webhook deliveries", w).await
    }

    async fn record_delivery(
        &self,
        webhook: &WebhookId,
        event_id: &str,
        attempt: &DeliveryAttempt,
        pace: buildstate_core::RetryPace,
    ) -> StoreResult<Option<Delivery>> {
        let w = work((webhook.clone(), event_id.to_owned(), attempt.clone(), pace), |tx, (h, e, a, j)| {
            Box::pin(webhooks::record(tx, h, e, a, *j))
        });
        self.transact(Write, "record a webhook delivery", w).await
    }

    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument> {
        self.transact(Read, "export a build", work(id, |tx, id| Box::pin(documents::export(tx, *id)))).await
    }

    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build> {
        let w = work((parts, mode), |tx, (parts, mode)| Box::pin(documents::import(tx, parts, *mode)));
        self.transact(Write, "import a build", w).await
    }

    async fn prune_build(&self, id: BuildId, rule: &PruneRule) -> StoreResult<Option<BuildDocument>> {
        let w = work((id, rule.clone()), |tx, (id, rule)| Box::pin(prune::prune(tx, *id, rule)));
        self.transact(Write, "prune a build", w).await
    }

    async fn duration_buckets(&self) -> StoreResult<Vec<crate::report::DurationRow>> {
        let w = work((), |tx, ()| Box::pin(async move { tx.duration_histogram(&Default::default()).await }));
        self.transact(Read, "read milestone durations", w).await
    }

    async fn report(&self, request: &ReportRequest) -> StoreResult<Report> {
        let w = work(request.clone(), |tx, r| Box::pin(crate::report::compute(tx, r)));
        self.transact(Read, "compute a report", w).await
    }
}
