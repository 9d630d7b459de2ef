//! `Store` for `PostgresStore`: each method is one transaction around the module that
//! knows how.

use std::time::Duration;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command, FailureRecord,
    HistoryEvent, Lease, LeaseRequest, LeaseToken, Name, NewBuild, Outcome,
};
use buildstate_store::{BuildFilter, FailureFilter, Guard, ImportMode, Store, StoreResult};

use crate::{PostgresStore, builds, catalog, documents, leases, records};

#[async_trait]
impl Store for PostgresStore {
    fn location(&self) -> String {
        PostgresStore::location(self).to_owned()
    }

    async fn add_catalog_item(&self, item: &CatalogItem) -> StoreResult<()> {
        self.write("add a catalog item", &(item,), |tx, (item,)| Box::pin(catalog::add(tx, item))).await
    }

    async fn catalog(&self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.read("list the catalog", &(kind,), |tx, (kind,)| Box::pin(catalog::list(tx, *kind))).await
    }

    async fn catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
        self.read("show a catalog item", &(kind, name), |tx, (kind, name)| {
            Box::pin(catalog::get(tx, *kind, name))
        })
        .await
    }

    async fn remove_catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        self.write("remove a catalog item", &(kind, name), |tx, (kind, name)| {
            Box::pin(catalog::remove(tx, *kind, name))
        })
        .await
    }

    async fn create_build(&self, new: &NewBuild) -> StoreResult<Build> {
        self.write("create a build", &(new,), |tx, (new,)| Box::pin(builds::create(tx, new))).await
    }

    async fn build(&self, id: BuildId) -> StoreResult<Build> {
        self.read("read a build", &(id,), |tx, (id,)| Box::pin(builds::get(tx, *id))).await
    }

    async fn find_build(&self, reference: &str) -> StoreResult<Build> {
        self.read("find a build", &(reference,), |tx, (reference,)| Box::pin(builds::find(tx, reference)))
            .await
    }

    async fn list_builds(&self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        self.read("list builds", &(filter,), |tx, (filter,)| Box::pin(builds::list(tx, filter))).await
    }

    async fn apply(&self, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
        self.write("a transition", &(id, command, guard), |tx, (id, command, guard)| {
            Box::pin(builds::apply(tx, *id, command, *guard))
        })
        .await
    }

    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.read("read history", &(id,), |tx, (id,)| Box::pin(builds::history(tx, *id))).await
    }

    async fn acquire_lease(&self, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
        self.write("acquire a lease", &(id, request), |tx, (id, request)| {
            Box::pin(leases::acquire(tx, *id, request))
        })
        .await
    }

    async fn renew_lease(&self, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
        self.write("renew a lease", &(id, token, ttl), |tx, (id, token, ttl)| {
            Box::pin(leases::renew(tx, *id, *token, *ttl))
        })
        .await
    }

    async fn release_lease(&self, id: BuildId, token: LeaseToken) -> StoreResult<()> {
        self.write("release a lease", &(id, token), |tx, (id, token)| {
            Box::pin(leases::release(tx, *id, *token))
        })
        .await
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.read("list leases", &(), |tx, ()| Box::pin(leases::held(tx))).await
    }

    async fn break_lease(&self, id: BuildId) -> StoreResult<Option<Lease>> {
        self.write("break a lease", &(id,), |tx, (id,)| Box::pin(leases::break_held(tx, *id))).await
    }

    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        self.read("list failures", &(filter,), |tx, (filter,)| Box::pin(records::failures(tx, filter))).await
    }

    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
    ) -> StoreResult<Vec<FailureRecord>> {
        self.write("resolve failures", &(id, number, notes), |tx, (id, number, notes)| {
            Box::pin(records::resolve(tx, *id, *number, notes))
        })
        .await
    }

    async fn add_artifact(&self, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
        self.write("add an artifact", &(id, artifact), |tx, (id, artifact)| {
            Box::pin(records::add_artifact(tx, *id, artifact))
        })
        .await
    }

    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.read("list artifacts", &(id,), |tx, (id,)| Box::pin(records::artifacts(tx, *id))).await
    }

    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument> {
        self.read("export a build", &(id,), |tx, (id,)| Box::pin(documents::export(tx, *id))).await
    }

    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build> {
        self.write("import a build", &(parts, mode), |tx, (parts, mode)| {
            Box::pin(documents::import(tx, parts, *mode))
        })
        .await
    }
}
