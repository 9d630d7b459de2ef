//! Which builds the store holds: build number ↔ id.
//!
//! The directory `builds/` is the truth: a build exists when `builds/<number>.json`
//! does. `index.json` (number → id) only saves opening every document to find a build
//! by id; it is checked against the directory listing on every use, and the files it
//! does not cover (a writer killed between a document and the index, a document copied
//! in by hand) are read to fill the gaps. A write transaction persists the repaired
//! index and removes strays when it commits (`tx.rs`).
//!
//! A transaction's commit writes documents first, then the index, then removes the
//! files it replaced, so the one multi-file change that can be cut short in a way that
//! matters, an `import --replace` that renumbers a build, has the index write as its
//! commit point: when two files hold one build id, the file the index names wins and
//! the other is a stray from an interrupted renumbering.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use buildstate_core::{BuildId, BuildNumber, DocumentError};
use buildstate_store::{StoreError, StoreResult};
use serde::Deserialize;

use crate::atomic;
use crate::disk;
use crate::error::{bad_document, corrupt};
use crate::layout::Layout;

#[derive(Debug, Default)]
pub(crate) struct Entries {
    pub(crate) by_number: BTreeMap<BuildNumber, BuildId>,
    by_id: HashMap<BuildId, BuildNumber>,
    /// The index on disk does not match `by_number`.
    pub(crate) stale: bool,
    /// Files that hold a build another file holds too, and that the index does not name.
    pub(crate) strays: Vec<BuildNumber>,
    /// Files named after a build number that the index does not cover and whose build
    /// cannot be told (not a document, not readable): by number, with why. They hold no
    /// build this store can use, but they are reported, never skipped in silence, and
    /// their numbers are not given to new builds (which would overwrite them).
    pub(crate) unreadable: BTreeMap<BuildNumber, StoreError>,
}

impl Entries {
    pub(crate) fn number_of(&self, id: BuildId) -> Option<&BuildNumber> {
        self.by_id.get(&id)
    }

    pub(crate) fn id_of(&self, number: &BuildNumber) -> Option<BuildId> {
        self.by_number.get(number).copied()
    }

    /// Why the file named after `number` holds no usable build, if it is one of those.
    pub(crate) fn unreadable(&self, number: &BuildNumber) -> Option<StoreError> {
        self.unreadable.get(number).map(again)
    }

    /// The first unreadable file's error, for work that needs every build.
    pub(crate) fn any_unreadable(&self) -> Option<StoreError> {
        self.unreadable.values().next().map(again)
    }

    pub(crate) fn insert(&mut self, number: BuildNumber, id: BuildId) {
        if let Some(old) = self.by_id.insert(id, number.clone()) {
            self.by_number.remove(&old);
        }
        self.by_number.insert(number, id);
    }

    pub(crate) fn remove(&mut self, id: BuildId) {
        if let Some(number) = self.by_id.remove(&id) {
            self.by_number.remove(&number);
        }
    }

    /// What `index.json` holds.
    pub(crate) fn to_json(&self) -> StoreResult<Vec<u8>> {
        serde_json::to_vec_pretty(&self.by_number)
            .map_err(|e| buildstate_store::StoreError::backend("encode the index", e))
    }
}

/// The builds in the directory, using the index where it agrees with the listing.
pub(crate) fn entries(layout: &Layout) -> StoreResult<Entries> {
    let index_path = layout.index_file();
    let (index, mut stale) = match read_index(&index_path) {
        Some(index) => (index, false),
        None => (BTreeMap::new(), true),
    };
    let mut found: Vec<(BuildNumber, BuildId, bool)> = Vec::new();
    let mut unreadable = BTreeMap::new();
    for stem in atomic::json_stems(&layout.builds_dir())? {
        // A name that cannot be a build number is not a file this store wrote.
        let Ok(number) = BuildNumber::new(&stem) else {
            tracing::warn!(file = stem, "ignoring a file that is not named after a build number");
            continue;
        };
        match index.get(&number) {
            Some(id) => found.push((number, *id, true)),
            None => {
                stale = true;
                // One file that is not a document must not make every build unreachable.
                match id_in_file(&layout.build_file(&number), &number) {
                    Ok(id) => found.push((number, id, false)),
                    Err(e) => {
                        unreadable.insert(number, e);
                    }
                }
            }
        }
    }
    if found.len() != index.len() {
        // Entries for files that are gone.
        stale = true;
    }
    let mut entries = settle(layout, found, stale)?;
    entries.unreadable = unreadable;
    Ok(entries)
}

/// The same error once more: one kept in [`Entries`] is reported by every use.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Document(d) => StoreError::Document(d.clone()),
        StoreError::Backend { context, source } => {
            StoreError::Backend { context, source: source.to_string().into() }
        }
        other => StoreError::Backend { context: "read a build document", source: other.to_string().into() },
    }
}

/// Resolves builds found in two files: the file the index names wins.
fn settle(layout: &Layout, found: Vec<(BuildNumber, BuildId, bool)>, stale: bool) -> StoreResult<Entries> {
    let mut owners: HashMap<BuildId, Vec<(BuildNumber, bool)>> = HashMap::new();
    for (number, id, indexed) in found {
        owners.entry(id).or_default().push((number, indexed));
    }
    let mut entries = Entries { stale, ..Entries::default() };
    for (id, files) in owners {
        let keep = match files.as_slice() {
            [(number, _)] => number.clone(),
            many => {
                let indexed: Vec<&BuildNumber> = many.iter().filter(|(_, i)| *i).map(|(n, _)| n).collect();
                let [winner] = indexed.as_slice() else {
                    let names: Vec<String> =
                        many.iter().map(|(n, _)| layout.build_file(n).display().to_string()).collect();
                    return Err(corrupt(
                        &layout.builds_dir(),
                        format!(
                            "build {id} is in {} files ({}); remove the one you do not want",
                            many.len(),
                            names.join(", ")
                        ),
                    ));
                };
                let winner = (*winner).clone();
                for (n, _) in many.iter().filter(|(n, _)| *n != winner) {
                    tracing::warn!(build = %id, stray = %n, "ignoring the stray file of an interrupted renumbering");
                    entries.strays.push(n.clone());
                }
                winner
            }
        };
        entries.insert(keep, id);
    }
    Ok(entries)
}

/// The index, or `None` when it is missing or unreadable: it is only a cache of what
/// the documents say, so a damaged one is rebuilt rather than reported.
fn read_index(path: &Path) -> Option<BTreeMap<BuildNumber, BuildId>> {
    let text = match atomic::read(path) {
        Ok(text) => text?,
        Err(e) => {
            tracing::warn!(error = %e, "rebuilding an unreadable index");
            return None;
        }
    };
    serde_json::from_str(&text)
        .map_err(|e| tracing::warn!(file = %path.display(), error = %e, "rebuilding a damaged index"))
        .ok()
}

/// The build id a document holds, checking that the file is named after its number.
fn id_in_file(path: &Path, number: &BuildNumber) -> StoreResult<BuildId> {
    // Only the identity is needed; the full document is validated when it is loaded.
    #[derive(Deserialize)]
    struct Identity {
        build_id: BuildId,
        build_number: BuildNumber,
    }
    let inconsistent = |what: String| bad_document(path, DocumentError::Inconsistent(what));
    let text = disk::read_document(path)?
        .ok_or_else(|| inconsistent("the file vanished while the store was locked".to_owned()))?;
    let identity: Identity = serde_json::from_str(&text)
        .map_err(|e| bad_document(path, DocumentError::Malformed(e.to_string())))?;
    if &identity.build_number != number {
        return Err(inconsistent(format!(
            "it holds build number {}, but a build's file is named after its number",
            identity.build_number
        )));
    }
    Ok(identity.build_id)
}
