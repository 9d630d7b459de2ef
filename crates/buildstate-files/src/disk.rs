//! Reading and writing each kind of file the store keeps. Called only by a transaction
//! (`tx.rs`), under the store's lock: shared to read, exclusive to write.

use std::io::ErrorKind;
use std::path::Path;

use buildstate_core::{
    BuildDocument, BuildId, BuildNumber, BuildParts, DocumentError, Lease, TokenRecord, WorkerRecord,
};
use buildstate_store::{LeaseRecord, StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::atomic::{self, Unreadable};
use crate::catalog_file::Catalog;
use crate::error::{bad_document, corrupt, io};
use crate::index::Entries;
use crate::layout::Layout;

/// `leases/<build-id>.json`: the build's last lease and whether it was given up.
#[derive(Serialize, Deserialize)]
struct LeaseFile {
    #[serde(flatten)]
    lease: Lease,
    released: bool,
}

/// A file of records of one kind, `{"<field>": [ … ]}`: `workers.json` (every worker, by
/// name) and `tokens.json` (every API token, by name; secrets' hashes only).
pub(crate) fn read_records<T: serde::de::DeserializeOwned>(path: &Path, field: &str) -> StoreResult<Vec<T>> {
    let Some(text) = atomic::read(path)? else { return Ok(Vec::new()) };
    let mut file: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| corrupt(path, e))?;
    match file.remove(field) {
        Some(list) => serde_json::from_value(list).map_err(|e| corrupt(path, e)),
        None => Err(corrupt(path, format!("no `{field}` list"))),
    }
}

pub(crate) fn write_records<T: Serialize>(path: &Path, field: &str, records: &[T]) -> StoreResult<()> {
    let mut file = serde_json::Map::new();
    let list = serde_json::to_value(records).map_err(|e| StoreError::backend("encode records", e))?;
    file.insert(field.to_owned(), list);
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::backend("encode records", e))?;
    bytes.push(b'\n');
    atomic::write(path, &bytes)
}

/// The worker registry; empty when no worker ever beat.
pub(crate) fn read_workers(layout: &Layout) -> StoreResult<Vec<WorkerRecord>> {
    read_records(&layout.workers_file(), "workers")
}

pub(crate) fn write_workers(layout: &Layout, workers: &[WorkerRecord]) -> StoreResult<()> {
    let mut workers = workers.to_vec();
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    write_records(&layout.workers_file(), "workers", &workers)
}

/// The API tokens; empty when none was ever created.
pub(crate) fn read_tokens(layout: &Layout) -> StoreResult<Vec<TokenRecord>> {
    read_records(&layout.tokens_file(), "tokens")
}

pub(crate) fn write_tokens(layout: &Layout, tokens: &[TokenRecord]) -> StoreResult<()> {
    let mut tokens = tokens.to_vec();
    tokens.sort_by(|a, b| a.name.cmp(&b.name));
    write_records(&layout.tokens_file(), "tokens", &tokens)
}

pub(crate) fn read_catalog(layout: &Layout) -> StoreResult<Catalog> {
    let path = layout.catalog_file();
    match atomic::read(&path)? {
        None => Ok(Catalog::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| corrupt(&path, e)),
    }
}

pub(crate) fn write_catalog(layout: &Layout, catalog: &Catalog) -> StoreResult<()> {
    atomic::write(&layout.catalog_file(), &catalog.to_json()?)
}

pub(crate) fn write_index(layout: &Layout, entries: &Entries) -> StoreResult<()> {
    atomic::write(&layout.index_file(), &entries.to_json()?)
}

/// The text of a build document, or `None` if there is no such file. What cannot be
/// read as one — a FIFO, a link, a device, a directory, a file over the cap, bytes that
/// are not text, a file the user may not read — is a bad document naming the file; only
/// a fault of the file system itself is a store fault.
pub(crate) fn read_document(path: &Path) -> StoreResult<Option<String>> {
    atomic::read_text(path).map_err(|e| match e {
        Unreadable::Io(e) if e.kind() != ErrorKind::PermissionDenied => io("read a build document", path, e),
        other => bad_document(path, DocumentError::Malformed(other.to_string())),
    })
}

/// Reads and validates the document of build `number`, which the index says is `id`.
pub(crate) fn read_build(layout: &Layout, number: &BuildNumber, id: BuildId) -> StoreResult<BuildParts> {
    let path = layout.build_file(number);
    let inconsistent = |what: String| bad_document(&path, DocumentError::Inconsistent(what));
    let text = read_document(&path)?
        .ok_or_else(|| inconsistent("the file vanished while the store was locked".to_owned()))?;
    // The same validation as an import: a hand edit that breaks the rules of a document
    // is reported, not loaded.
    let parts = BuildDocument::parse(&text).map_err(|e| bad_document(&path, e))?;
    if &parts.build.number != number {
        return Err(inconsistent(format!(
            "it holds build number {}; a build's file is named after its number",
            parts.build.number
        )));
    }
    if parts.build.id != id {
        return Err(inconsistent(format!(
            "it holds build id {}, but the index says {id}; if the id was changed on purpose, delete {} to rebuild the index",
            parts.build.id,
            layout.index_file().display()
        )));
    }
    Ok(parts)
}

/// Writes the build's document, exactly the export format.
pub(crate) fn write_build(layout: &Layout, parts: &BuildParts) -> StoreResult<()> {
    let doc = BuildDocument::from_parts(parts.clone());
    let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| StoreError::backend("encode a build", e))?;
    bytes.push(b'\n');
    atomic::write(&layout.build_file(&parts.build.number), &bytes)
}

/// The build's lease record, released or not.
pub(crate) fn read_lease(layout: &Layout, id: BuildId) -> StoreResult<Option<LeaseRecord>> {
    let path = layout.lease_file(id);
    let Some(text) = atomic::read(&path)? else { return Ok(None) };
    let file: LeaseFile = serde_json::from_str(&text).map_err(|e| corrupt(&path, e))?;
    if file.lease.build_id != id {
        return Err(corrupt(&path, format!("it holds the lease of build {}", file.lease.build_id)));
    }
    Ok(Some(LeaseRecord { lease: file.lease, released: file.released }))
}

pub(crate) fn write_lease(layout: &Layout, record: &LeaseRecord) -> StoreResult<()> {
    let file = LeaseFile { lease: record.lease.clone(), released: record.released };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::backend("encode a lease", e))?;
    atomic::write(&layout.lease_file(record.lease.build_id), &bytes)
}

/// The builds that have a lease file. Only `<build id>.json` is one of ours.
pub(crate) fn lease_ids(layout: &Layout) -> StoreResult<Vec<BuildId>> {
    Ok(atomic::json_stems(&layout.leases_dir())?.iter().filter_map(|stem| stem.parse().ok()).collect())
}
