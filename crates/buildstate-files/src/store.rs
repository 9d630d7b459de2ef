//! `Store` for `FileStore`: each method is one transaction (shared lock for reads,
//! exclusive for writes) around the module that knows how.

use std::time::Duration;

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildDocument, BuildId, BuildParts, CatalogItem, CatalogKind, Command, FailureRecord,
    HistoryEvent, Lease, LeaseRequest, LeaseToken, Name, NewBuild, Outcome,
};
use buildstate_store::{BuildFilter, FailureFilter, Guard, ImportMode, Store, StoreResult};

use crate::{FileStore, builds, catalog, documents, leases, records};

#[async_trait]
impl Store for FileStore {
    fn location(&self) -> String {
        self.dir().display().to_string()
    }

    async fn add_catalog_item(&self, item: &CatalogItem) -> StoreResult<()> {
        self.write(|c| catalog::add(c, item))
    }

    async fn catalog(&self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        self.read(|c| catalog::list(c, kind))
    }

    async fn catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<CatalogItem> {
        self.read(|c| catalog::get(c, kind, name))
    }

    async fn remove_catalog_item(&self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        self.write(|c| catalog::remove(c, kind, name))
    }

    async fn create_build(&self, new: &NewBuild) -> StoreResult<Build> {
        self.write(|c| builds::create(c, new))
    }

    async fn build(&self, id: BuildId) -> StoreResult<Build> {
        self.read(|c| builds::get(c, id))
    }

    async fn find_build(&self, reference: &str) -> StoreResult<Build> {
        self.read(|c| builds::find(c, reference))
    }

    async fn list_builds(&self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        self.read(|c| builds::list(c, filter))
    }

    async fn apply(&self, id: BuildId, command: &Command, guard: Guard) -> StoreResult<Outcome> {
        self.write(|c| builds::apply(c, id, command, guard))
    }

    async fn history(&self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        self.read(|c| builds::history(c, id))
    }

    async fn acquire_lease(&self, id: BuildId, request: &LeaseRequest) -> StoreResult<Lease> {
        self.write(|c| leases::acquire(c, id, request))
    }

    async fn take_over_lease(
        &self,
        id: BuildId,
        request: &LeaseRequest,
        dead: LeaseToken,
    ) -> StoreResult<Lease> {
        self.write(|c| leases::take_over(c, id, request, dead))
    }

    async fn renew_lease(&self, id: BuildId, token: LeaseToken, ttl: Duration) -> StoreResult<Lease> {
        self.write(|c| leases::renew(c, id, token, ttl))
    }

    async fn release_lease(&self, id: BuildId, token: LeaseToken) -> StoreResult<()> {
        self.write(|c| leases::release(c, id, token))
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.read(leases::held)
    }

    async fn break_lease(&self, id: BuildId) -> StoreResult<Option<Lease>> {
        self.write(|c| leases::break_held(c, id))
    }

    async fn failures(&self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        self.read(|c| records::failures(c, filter))
    }

    async fn resolve_failures(
        &self,
        id: BuildId,
        number: Option<u32>,
        notes: &str,
        guard: Guard,
    ) -> StoreResult<Vec<FailureRecord>> {
        self.write(|c| records::resolve(c, id, number, notes, guard))
    }

    async fn add_artifact(&self, id: BuildId, artifact: &Artifact, guard: Guard) -> StoreResult<()> {
        self.write(|c| records::add_artifact(c, id, artifact, guard))
    }

    async fn artifacts(&self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        self.read(|c| records::artifacts(c, id))
    }

    async fn export_build(&self, id: BuildId) -> StoreResult<BuildDocument> {
        self.read(|c| documents::export(c, id))
    }

    async fn import_build(&self, parts: BuildParts, mode: ImportMode) -> StoreResult<Build> {
        self.write(|c| documents::import(c, parts, mode))
    }
}
