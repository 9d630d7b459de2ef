//! The engine's primitives (`buildstate_store::Tx`) over the store's files: a write-back
//! cache of what one transaction reads and changes, written out when it commits.
//!
//! A transaction runs under the directory's lock (`handle.rs`). Every file is read at
//! most once and kept; a write primitive changes only the kept copy and marks it dirty.
//! When the work fails the cache is dropped, so nothing is written. When it succeeds,
//! [`FileTx::commit`] replaces each dirty file atomically, in an order that leaves
//! something the next transaction reads correctly (or repairs) wherever a crash cuts it:
//!
//! 1. the catalog, first: a build never names an item that a crash kept out of the
//!    catalog; an item an import added for a build a crash then lost is just an item;
//! 2. the documents: one the index does not name yet is found and indexed by the next
//!    transaction (`index.rs`);
//! 3. the index, the commit point of a renumbering: when two files hold one build, the
//!    one it names wins;
//! 4. the removals: the old file of a renumbered (or deleted) build and the strays of
//!    earlier interrupted renumberings, which the index already disowns;
//! 5. the lease files: a lease of a build that is gone is ignored, and the one write
//!    that goes with a document (`import --replace` putting the record back) is the
//!    record as it already was;
//! 6. the worker registry (`workers.json`) and the API tokens (`tokens.json`), which no
//!    other file refers to.

use std::cmp::Reverse;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use buildstate_core::{
    Artifact, Build, BuildId, BuildNumber, BuildParts, CatalogItem, CatalogKind, FailureRecord, HistoryEvent,
    Lease, Name, WorkerRecord,
};
use buildstate_store::{BuildFilter, FailureFilter, LeaseRecord, Mode, StoreError, StoreResult, Tx};

use crate::catalog_file::Catalog;
use crate::index::{self, Entries};
use crate::layout::{Layout, check_number};
use crate::{atomic, disk};

/// The error of a listing that met build documents it cannot read (see `list_builds`):
/// what it could read, and what it could not.
#[derive(Debug)]
pub struct UnreadableBuilds {
    /// The readable builds that match the filter, newest first, within its limit.
    pub builds: Vec<Build>,
    /// Each document that cannot be read — no filter could be applied to it — by build
    /// number (its file's name), with what is wrong: the file and what to do.
    pub unreadable: Vec<(BuildNumber, String)>,
}

impl std::fmt::Display for UnreadableBuilds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reasons: Vec<&str> = self.unreadable.iter().map(|(_, why)| why.as_str()).collect();
        f.write_str(&reasons.join("; "))
    }
}

impl std::error::Error for UnreadableBuilds {}

pub(crate) struct FileTx<'a> {
    layout: &'a Layout,
    mode: Mode,
    /// Which builds exist (number ↔ id), listed on first use; `stale` once it differs
    /// from `index.json`, which this transaction's changes make it.
    entries: Option<Entries>,
    catalog: Option<Cached<Catalog>>,
    docs: BTreeMap<BuildId, Doc>,
    leases: BTreeMap<BuildId, Cached<Option<LeaseRecord>>>,
    workers: Option<Cached<Vec<WorkerRecord>>>,
    tokens: Option<Cached<Vec<buildstate_core::TokenRecord>>>,
}

struct Cached<T> {
    value: T,
    dirty: bool,
}

/// One build's document as this transaction sees it.
struct Doc {
    /// `None` once deleted.
    parts: Option<BuildParts>,
    /// The number of the file the build had when the transaction began: removed at
    /// commit if the build is gone or now lives under another number.
    file: Option<BuildNumber>,
    dirty: bool,
}

impl<'a> FileTx<'a> {
    pub(crate) fn new(layout: &'a Layout, mode: Mode) -> Self {
        FileTx {
            layout,
            mode,
            entries: None,
            catalog: None,
            docs: BTreeMap::new(),
            leases: BTreeMap::new(),
            workers: None,
            tokens: None,
        }
    }

    pub(crate) fn entries(&mut self) -> StoreResult<&mut Entries> {
        let entries = match self.entries.take() {
            Some(entries) => entries,
            None => index::entries(self.layout)?,
        };
        Ok(self.entries.insert(entries))
    }

    fn catalog_file(&mut self) -> StoreResult<&mut Cached<Catalog>> {
        let catalog = match self.catalog.take() {
            Some(catalog) => catalog,
            None => Cached { value: disk::read_catalog(self.layout)?, dirty: false },
        };
        Ok(self.catalog.insert(catalog))
    }

    /// The build's document, read into the cache on first use; `None` for no such build.
    fn doc(&mut self, id: BuildId) -> StoreResult<Option<&mut Doc>> {
        if !self.docs.contains_key(&id) {
            let Some(number) = self.entries()?.number_of(id).cloned() else { return Ok(None) };
            let parts = disk::read_build(self.layout, &number, id)?;
            self.docs.insert(id, Doc { parts: Some(parts), file: Some(number), dirty: false });
        }
        Ok(self.docs.get_mut(&id))
    }

    fn parts(&mut self, id: BuildId) -> StoreResult<Option<&BuildParts>> {
        Ok(self.doc(id)?.and_then(|d| d.parts.as_ref()))
    }

    /// Changes the build's document, to be written at commit.
    fn edit<T>(&mut self, id: BuildId, change: impl FnOnce(&mut BuildParts) -> T) -> StoreResult<T> {
        match self.doc(id)? {
            Some(Doc { parts: Some(parts), dirty, .. }) => {
                *dirty = true;
                Ok(change(parts))
            }
            _ => Err(StoreError::BuildNotFound(id.to_string())),
        }
    }

    /// Every build, in number order (so a damaged file is reported the same way each time).
    fn all(&mut self) -> StoreResult<Vec<&BuildParts>> {
        if let Some(e) = self.entries()?.any_unreadable() {
            // Counting or searching every build without some of them would be a wrong
            // answer (a catalog item in use deleted, failures missed), not a partial one.
            return Err(e);
        }
        let ids: Vec<BuildId> = self.entries()?.by_number.values().copied().collect();
        for &id in &ids {
            self.doc(id)?;
        }
        Ok(ids.iter().filter_map(|id| self.docs.get(id)?.parts.as_ref()).collect())
    }

    fn workers_file(&mut self) -> StoreResult<&mut Cached<Vec<WorkerRecord>>> {
        let workers = match self.workers.take() {
            Some(workers) => workers,
            None => Cached { value: disk::read_workers(self.layout)?, dirty: false },
        };
        Ok(self.workers.insert(workers))
    }

    fn tokens_file(&mut self) -> StoreResult<&mut Cached<Vec<buildstate_core::TokenRecord>>> {
        let tokens = match self.tokens.take() {
            Some(tokens) => tokens,
            None => Cached { value: disk::read_tokens(self.layout)?, dirty: false },
        };
        Ok(self.tokens.insert(tokens))
    }

    fn lease_file(&mut self, id: BuildId) -> StoreResult<Option<&LeaseRecord>> {
        let lease = match self.leases.entry(id) {
            Entry::Occupied(cached) => cached.into_mut(),
            Entry::Vacant(slot) => {
                slot.insert(Cached { value: disk::read_lease(self.layout, id)?, dirty: false })
            }
        };
        Ok(lease.value.as_ref())
    }

    /// Writes what the work changed, in the order the module docs give. A read writes
    /// nothing, repairs included: it holds the lock only shared.
    pub(crate) fn commit(mut self) -> StoreResult<()> {
        if self.mode == Mode::Read {
            return Ok(());
        }
        if self.docs.values().any(|d| d.dirty && d.parts.is_some()) {
            // A document records its platform's provider as the catalog has it now.
            self.catalog_file()?;
        }
        let FileTx { layout, catalog, mut docs, entries, leases, workers, tokens, .. } = self;
        if let Some(catalog) = catalog.as_ref().filter(|c| c.dirty) {
            disk::write_catalog(layout, &catalog.value)?;
        }
        for doc in docs.values_mut().filter(|d| d.dirty) {
            if let Some(parts) = &mut doc.parts {
                parts.provider = catalog.as_ref().and_then(|c| c.value.provider(&parts.build.platform));
                disk::write_build(layout, parts)?;
            }
        }
        if let Some(entries) = &entries {
            if entries.stale {
                disk::write_index(layout, entries)?;
            }
            let replaced = docs.values().filter_map(|d| {
                let old = d.file.as_ref()?;
                (d.parts.as_ref().map(|p| &p.build.number) != Some(old)).then_some(old)
            });
            // A name the index gives a build now holds that build's new document.
            for number in entries.strays.iter().chain(replaced).filter(|n| entries.id_of(n).is_none()) {
                atomic::remove(&layout.build_file(number))?;
            }
        }
        for (id, lease) in leases.iter().filter(|(_, l)| l.dirty) {
            match &lease.value {
                Some(record) => disk::write_lease(layout, record)?,
                None => atomic::remove(&layout.lease_file(*id))?,
            }
        }
        if let Some(workers) = workers.filter(|w| w.dirty) {
            disk::write_workers(layout, &workers.value)?;
        }
        if let Some(tokens) = tokens.filter(|t| t.dirty) {
            disk::write_tokens(layout, &tokens.value)?;
        }
        Ok(())
    }
}

/// What is wrong with a document, as a listing names it: the file, what, and what to do.
fn reason(e: &StoreError) -> String {
    match e {
        StoreError::Backend { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

fn uses(build: &Build, kind: CatalogKind, name: &Name) -> bool {
    match kind {
        CatalogKind::Platform => &build.platform == name,
        CatalogKind::Os => &build.os == name,
        CatalogKind::ImageType => &build.image_type == name,
    }
}

#[async_trait]
impl Tx for FileTx<'_> {
    async fn catalog(&mut self, kind: CatalogKind) -> StoreResult<Vec<CatalogItem>> {
        Ok(self.catalog_file()?.value.items(kind))
    }

    async fn catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<Option<CatalogItem>> {
        Ok(self.catalog_file()?.value.get(kind, name))
    }

    async fn insert_catalog_item(&mut self, item: &CatalogItem) -> StoreResult<()> {
        let catalog = self.catalog_file()?;
        catalog.value.insert(item.clone());
        catalog.dirty = true;
        Ok(())
    }

    async fn delete_catalog_item(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<()> {
        let catalog = self.catalog_file()?;
        catalog.value.remove(kind, name);
        catalog.dirty = true;
        Ok(())
    }

    async fn builds_using(&mut self, kind: CatalogKind, name: &Name) -> StoreResult<u64> {
        Ok(self.all()?.iter().filter(|p| uses(&p.build, kind, name)).count() as u64)
    }

    async fn build(&mut self, id: BuildId) -> StoreResult<Option<Build>> {
        Ok(self.parts(id)?.map(|p| p.build.clone()))
    }

    async fn build_id_by_number(&mut self, number: &str) -> StoreResult<Option<BuildId>> {
        // Text that is no build number names no build.
        let Ok(number) = BuildNumber::new(number) else { return Ok(None) };
        let entries = self.entries()?;
        // A file by that name that holds no readable build is reported, not "no build".
        match entries.unreadable(&number) {
            Some(e) => Err(e),
            None => Ok(entries.id_of(&number)),
        }
    }

    async fn prefix_candidates(
        &mut self,
        id_prefix: &str,
        number_prefix: &str,
    ) -> StoreResult<Vec<(BuildId, BuildNumber)>> {
        // By number, at most 100: enough to say a prefix is ambiguous and show a few.
        let entries = self.entries()?;
        let matching = entries.by_number.iter().filter(|(number, id)| {
            number.as_str().starts_with(number_prefix) || id.to_string().starts_with(id_prefix)
        });
        Ok(matching.take(100).map(|(number, id)| (*id, number.clone())).collect())
    }

    /// One damaged document must not hide every other build: each document is read on
    /// its own, and when some cannot be, the listing fails with [`UnreadableBuilds`] —
    /// the readable builds and what is wrong with each of the others — so that a caller
    /// can show both, and one that only wants the list still gets an error naming the
    /// files. Faults of the store as a whole (the lock, the directory) fail it whole.
    async fn list_builds(&mut self, filter: &BuildFilter) -> StoreResult<Vec<Build>> {
        let entries = self.entries()?;
        let ids: Vec<(BuildNumber, BuildId)> =
            entries.by_number.iter().map(|(number, id)| (number.clone(), *id)).collect();
        // Files whose build could not even be told are unreadable documents too.
        let mut unreadable: Vec<(BuildNumber, String)> =
            entries.unreadable.iter().map(|(number, e)| (number.clone(), reason(e))).collect();
        let mut builds = Vec::new();
        for (number, id) in ids {
            match self.parts(id) {
                Ok(Some(parts)) if filter.matches(&parts.build) => builds.push(parts.build.clone()),
                Ok(_) => {}
                Err(e @ (StoreError::Backend { .. } | StoreError::Document(_))) => {
                    unreadable.push((number, reason(&e)));
                }
                Err(e) => return Err(e),
            }
        }
        unreadable.sort_by(|a, b| a.0.cmp(&b.0));
        builds.sort_by_key(|b| Reverse((b.created_at, b.id)));
        builds.truncate(filter.limit.unwrap_or(usize::MAX));
        if unreadable.is_empty() {
            return Ok(builds);
        }
        Err(StoreError::Backend {
            context: "corrupt file in the file store",
            source: Box::new(UnreadableBuilds { builds, unreadable }),
        })
    }

    async fn numbers_under(&mut self, stem: &str) -> StoreResult<Vec<String>> {
        // A number taken by an unreadable file is not free: a new build would replace it.
        let entries = self.entries()?;
        let numbers = entries.by_number.keys().chain(entries.unreadable.keys()).map(BuildNumber::as_str);
        Ok(numbers.filter(|n| n.starts_with(stem)).map(str::to_owned).collect())
    }

    async fn insert_build(&mut self, build: &Build) -> StoreResult<()> {
        check_number(&build.number)?;
        let entries = self.entries()?;
        if let Some(e) = entries.unreadable(&build.number) {
            // Its file is somebody's, unreadable as it is; writing would destroy it.
            return Err(e);
        }
        entries.insert(build.number.clone(), build.id);
        entries.stale = true;
        // An import that replaces a build deleted it just before: its old file is
        // still to be removed if the number changed.
        let file = self.docs.remove(&build.id).and_then(|d| d.file);
        let parts = BuildParts {
            build: build.clone(),
            provider: None,
            history: Vec::new(),
            failures: Vec::new(),
            artifacts: Vec::new(),
        };
        self.docs.insert(build.id, Doc { parts: Some(parts), file, dirty: true });
        Ok(())
    }

    async fn swap_build(&mut self, build: &Build, expected_version: u64) -> StoreResult<bool> {
        // Under the exclusive lock nobody moves the build meanwhile; the check keeps the
        // primitive's contract all the same.
        if self.parts(build.id)?.is_none_or(|p| p.build.version != expected_version) {
            return Ok(false);
        }
        self.edit(build.id, |p| p.build = build.clone())?;
        Ok(true)
    }

    async fn delete_build(&mut self, id: BuildId) -> StoreResult<()> {
        let file = match self.docs.remove(&id) {
            Some(doc) => doc.file,
            None => self.entries()?.number_of(id).cloned(),
        };
        self.docs.insert(id, Doc { parts: None, file, dirty: true });
        let entries = self.entries()?;
        entries.remove(id);
        entries.stale = true;
        self.leases.insert(id, Cached { value: None, dirty: true });
        Ok(())
    }

    async fn history(&mut self, id: BuildId) -> StoreResult<Vec<HistoryEvent>> {
        Ok(self.parts(id)?.map(|p| p.history.clone()).unwrap_or_default())
    }

    async fn append_events(&mut self, id: BuildId, events: &[HistoryEvent]) -> StoreResult<()> {
        self.edit(id, |p| p.history.extend_from_slice(events))
    }

    async fn failures(&mut self, filter: &FailureFilter) -> StoreResult<Vec<FailureRecord>> {
        let builds = match filter.build {
            Some(id) => self.parts(id)?.into_iter().collect(),
            None => self.all()?,
        };
        let mut records: Vec<FailureRecord> =
            builds.iter().flat_map(|p| &p.failures).filter(|f| filter.matches(f)).cloned().collect();
        records.sort_by_key(|f| Reverse((f.at, f.number, f.build_id)));
        records.truncate(filter.limit.unwrap_or(usize::MAX));
        Ok(records)
    }

    async fn insert_failures(&mut self, failures: &[FailureRecord]) -> StoreResult<()> {
        failures.iter().try_for_each(|f| self.edit(f.build_id, |p| p.failures.push(f.clone())))
    }

    async fn update_failure(&mut self, f: &FailureRecord) -> StoreResult<()> {
        self.edit(f.build_id, |p| {
            if let Some(stored) = p.failures.iter_mut().find(|s| s.number == f.number) {
                stored.resolved = f.resolved;
                stored.resolution.clone_from(&f.resolution);
                stored.resolved_at = f.resolved_at;
            }
        })
    }

    async fn artifacts(&mut self, id: BuildId) -> StoreResult<Vec<Artifact>> {
        Ok(self.parts(id)?.map(|p| p.artifacts.clone()).unwrap_or_default())
    }

    async fn put_artifact(&mut self, id: BuildId, artifact: &Artifact) -> StoreResult<()> {
        self.edit(id, |p| match p.artifacts.iter_mut().find(|a| a.name == artifact.name) {
            Some(stored) => *stored = artifact.clone(),
            None => p.artifacts.push(artifact.clone()),
        })
    }

    async fn lease(&mut self, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
        Ok(self.lease_file(id)?.cloned())
    }

    async fn put_lease(&mut self, record: &LeaseRecord) -> StoreResult<()> {
        self.leases.insert(record.lease.build_id, Cached { value: Some(record.clone()), dirty: true });
        Ok(())
    }

    async fn held_leases(&mut self) -> StoreResult<Vec<(BuildNumber, Lease)>> {
        let mut ids: BTreeSet<BuildId> = disk::lease_ids(self.layout)?.into_iter().collect();
        ids.extend(self.leases.keys());
        let mut held = Vec::new();
        for id in ids {
            // The lease of a build that is gone is moot.
            let Some(number) = self.entries()?.number_of(id).cloned() else { continue };
            if let Some(lease) = self.lease_file(id)?.and_then(LeaseRecord::held) {
                held.push((number, lease.clone()));
            }
        }
        Ok(held)
    }

    async fn tokens(&mut self) -> StoreResult<Vec<buildstate_core::TokenRecord>> {
        Ok(self.tokens_file()?.value.clone())
    }

    async fn token(
        &mut self,
        id: &buildstate_core::TokenId,
    ) -> StoreResult<Option<buildstate_core::TokenRecord>> {
        Ok(self.tokens_file()?.value.iter().find(|t| t.id == *id).cloned())
    }

    async fn put_token(&mut self, record: &buildstate_core::TokenRecord) -> StoreResult<()> {
        let tokens = self.tokens_file()?;
        tokens.value.retain(|t| t.id != record.id);
        tokens.value.push(record.clone());
        tokens.dirty = true;
        Ok(())
    }

    async fn worker(&mut self, name: &str) -> StoreResult<Option<WorkerRecord>> {
        Ok(self.workers_file()?.value.iter().find(|w| w.name == name).cloned())
    }

    async fn put_worker(&mut self, record: &WorkerRecord) -> StoreResult<()> {
        let workers = self.workers_file()?;
        workers.value.retain(|w| w.name != record.name);
        workers.value.push(record.clone());
        workers.dirty = true;
        Ok(())
    }

    async fn workers_seen_since(&mut self, since: jiff::Timestamp) -> StoreResult<Vec<WorkerRecord>> {
        Ok(self.workers_file()?.value.iter().filter(|w| w.last_seen >= since).cloned().collect())
    }

    async fn forget_workers(&mut self, before: jiff::Timestamp) -> StoreResult<()> {
        let workers = self.workers_file()?;
        let kept = workers.value.len();
        workers.value.retain(|w| w.last_seen >= before);
        workers.dirty |= workers.value.len() != kept;
        Ok(())
    }
}
