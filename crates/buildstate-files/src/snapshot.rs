//! Reading and writing the store's files inside a transaction.
//!
//! A [`Snapshot`] exists only while the store's lock is held (shared or exclusive), so
//! everything read through it belongs to one committed state. A [`Txn`] exists only
//! under the exclusive lock, and is the only way to write.

use std::ops::Deref;

use buildstate_core::{BuildDocument, BuildId, BuildNumber, BuildParts, Lease};
use buildstate_store::{LeaseRecord, StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::catalog_file::Catalog;
use crate::error::corrupt;
use crate::index::{self, Entries};
use crate::layout::Layout;

#[derive(Debug)]
pub(crate) struct Snapshot<'a> {
    layout: &'a Layout,
    /// Under the exclusive lock: reads may also repair what a dead writer left behind.
    exclusive: bool,
}

/// `leases/<build-id>.json`: the build's last lease and whether it was given up.
#[derive(Serialize, Deserialize)]
struct LeaseFile {
    #[serde(flatten)]
    lease: Lease,
    released: bool,
}

impl<'a> Snapshot<'a> {
    pub(crate) fn new(layout: &'a Layout) -> Self {
        Snapshot { layout, exclusive: false }
    }

    pub(crate) fn layout(&self) -> &Layout {
        self.layout
    }

    pub(crate) fn catalog(&self) -> StoreResult<Catalog> {
        let path = self.layout.catalog_file();
        match atomic::read(&path)? {
            None => Ok(Catalog::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| corrupt(&path, e)),
        }
    }

    /// The builds. Under the exclusive lock, the index is brought up to date and strays
    /// are removed first: whatever disagrees with the documents then is left over from a
    /// writer that died, never from one still working.
    pub(crate) fn entries(&self) -> StoreResult<Entries> {
        let mut entries = index::entries(self.layout)?;
        if self.exclusive {
            for stray in std::mem::take(&mut entries.strays) {
                atomic::remove(&self.layout.build_file(&stray))?;
            }
            if entries.stale {
                atomic::write(&self.layout.index_file(), &entries.to_json()?)?;
                entries.stale = false;
            }
        }
        Ok(entries)
    }

    /// The build `id`, or `BuildNotFound`.
    pub(crate) fn build(&self, id: BuildId) -> StoreResult<BuildParts> {
        let entries = self.entries()?;
        let number = entries.number_of(id).ok_or_else(|| StoreError::BuildNotFound(id.to_string()))?;
        self.load(number, id)
    }

    /// `BuildNotFound` unless the build exists.
    pub(crate) fn require(&self, id: BuildId) -> StoreResult<()> {
        match self.entries()?.number_of(id) {
            Some(_) => Ok(()),
            None => Err(StoreError::BuildNotFound(id.to_string())),
        }
    }

    /// Reads and validates the document of build `number`, which the index says is `id`.
    pub(crate) fn load(&self, number: &BuildNumber, id: BuildId) -> StoreResult<BuildParts> {
        let path = self.layout.build_file(number);
        let text = atomic::read(&path)?
            .ok_or_else(|| corrupt(&path, "the file vanished while the store was locked"))?;
        // The same validation as an import: a hand edit that breaks the rules of a
        // document is reported, not loaded.
        let parts = BuildDocument::parse(&text).map_err(|e| corrupt(&path, e))?;
        if &parts.build.number != number {
            return Err(corrupt(
                &path,
                format!(
                    "it holds build number {}; a build's file is named after its number",
                    parts.build.number
                ),
            ));
        }
        if parts.build.id != id {
            return Err(corrupt(
                &path,
                format!(
                    "it holds build id {}, but the index says {id}; if the id was changed on purpose, delete {} to rebuild the index",
                    parts.build.id,
                    self.layout.index_file().display()
                ),
            ));
        }
        Ok(parts)
    }

    /// Every build, in number order.
    pub(crate) fn all(&self, entries: &Entries) -> StoreResult<Vec<BuildParts>> {
        entries.by_number.iter().map(|(number, id)| self.load(number, *id)).collect()
    }

    /// The build's lease record, released or not.
    pub(crate) fn lease(&self, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
        let path = self.layout.lease_file(id);
        let Some(text) = atomic::read(&path)? else { return Ok(None) };
        let file: LeaseFile = serde_json::from_str(&text).map_err(|e| corrupt(&path, e))?;
        if file.lease.build_id != id {
            return Err(corrupt(&path, format!("it holds the lease of build {}", file.lease.build_id)));
        }
        Ok(Some(LeaseRecord { lease: file.lease, released: file.released }))
    }

    /// Every lease record on file, of builds that exist.
    pub(crate) fn lease_records(&self, entries: &Entries) -> StoreResult<Vec<LeaseRecord>> {
        let mut records = Vec::new();
        for stem in atomic::json_stems(&self.layout.leases_dir())? {
            // Only `<build id>.json` is ours; a lease of a build that is gone is moot.
            let Ok(id) = stem.parse::<BuildId>() else { continue };
            if entries.number_of(id).is_some()
                && let Some(record) = self.lease(id)?
            {
                records.push(record);
            }
        }
        Ok(records)
    }
}

#[derive(Debug)]
pub(crate) struct Txn<'a> {
    snapshot: Snapshot<'a>,
}

impl<'a> Deref for Txn<'a> {
    type Target = Snapshot<'a>;
    fn deref(&self) -> &Snapshot<'a> {
        &self.snapshot
    }
}

impl<'a> Txn<'a> {
    pub(crate) fn new(layout: &'a Layout) -> Self {
        Txn { snapshot: Snapshot { layout, exclusive: true } }
    }

    /// Writes the build's document, exactly the export format.
    pub(crate) fn save_build(&self, parts: &BuildParts) -> StoreResult<()> {
        let doc = BuildDocument::from_parts(parts.clone());
        let mut bytes =
            serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::backend("encode a build", e))?;
        bytes.push(b'\n');
        atomic::write(&self.layout().build_file(&parts.build.number), &bytes)
    }

    pub(crate) fn remove_build_file(&self, number: &BuildNumber) -> StoreResult<()> {
        atomic::remove(&self.layout().build_file(number))
    }

    pub(crate) fn save_index(&self, entries: &Entries) -> StoreResult<()> {
        atomic::write(&self.layout().index_file(), &entries.to_json()?)
    }

    pub(crate) fn save_catalog(&self, catalog: &Catalog) -> StoreResult<()> {
        atomic::write(&self.layout().catalog_file(), &catalog.to_json()?)
    }

    pub(crate) fn save_lease(&self, record: &LeaseRecord) -> StoreResult<()> {
        let file = LeaseFile { lease: record.lease.clone(), released: record.released };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::backend("encode a lease", e))?;
        atomic::write(&self.layout().lease_file(record.lease.build_id), &bytes)
    }
}
