//! What a syncer remembers between runs, in its state directory:
//!
//! - `state.json`: per object, the ETag/version we last wrote or read and the document
//!   version it held. It is what makes the next write conditional on "unchanged since I
//!   last saw it". Losing it is safe: the next push then tries create-if-absent, fails,
//!   re-reads and carries on; it only costs a round trip.
//! - `backlog/`: one file per build whose copy could not be pushed, holding the newest
//!   document that failed, until a push of it (or of something newer) lands.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use buildstate_core::BuildDocument;
use serde::{Deserialize, Serialize};

use crate::SyncError;

const FORMAT: &str = "buildstate.sync-state/v1";
/// Temporary files of a write in progress start with this.
const TMP_PREFIX: &str = ".tmp-";

/// What we last saw of one remote object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seen {
    pub e_tag: Option<String>,
    pub version: Option<String>,
    /// The build document version that object held.
    pub document_version: u64,
    /// `lineage::digest` of that document (absent in state files of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Seen {
    /// What we saw: the object's ETag and version, and the document it held.
    pub(crate) fn of(e_tag: Option<String>, version: Option<String>, doc: &BuildDocument) -> Self {
        Seen { e_tag, version, document_version: doc.version, digest: Some(crate::lineage::digest(doc)) }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    format: String,
    target: String,
    /// Keyed by object path (`prefix/provider/number/state.json`).
    objects: BTreeMap<String, Seen>,
}

#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    target: String,
}

impl StateDir {
    /// Opens (creating) the directory, refusing one that belongs to another target: ETags
    /// of one bucket mean nothing in another.
    pub(crate) fn open(dir: PathBuf, target: &str) -> Result<Self, SyncError> {
        std::fs::create_dir_all(dir.join("backlog")).map_err(|e| SyncError::state(&dir, e))?;
        let state = StateDir { dir, target: target.to_owned() };
        if let Some(file) = state.read()?
            && file.target != target
        {
            return Err(SyncError::StateForOtherTarget {
                path: state.dir.clone(),
                expected: file.target,
                found: target.to_owned(),
            });
        }
        Ok(state)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn read(&self) -> Result<Option<StateFile>, SyncError> {
        let path = self.state_path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|e| SyncError::state(&path, e.into()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SyncError::state(&path, e)),
        }
    }

    pub(crate) fn load(&self) -> Result<BTreeMap<String, Seen>, SyncError> {
        Ok(self.read()?.map(|f| f.objects).unwrap_or_default())
    }

    /// Records (or forgets, with `None`) one object. Read-merge-write under a lock, so that
    /// processes sharing the directory (the CLI after each transition, a runner) never
    /// drop each other's entries.
    pub(crate) fn record(&self, key: &str, seen: Option<&Seen>) -> Result<(), SyncError> {
        let _lock = self.lock()?;
        let mut file = self.read()?.unwrap_or_else(|| StateFile {
            format: FORMAT.to_owned(),
            target: self.target.clone(),
            objects: BTreeMap::new(),
        });
        match seen {
            Some(seen) => file.objects.insert(key.to_owned(), seen.clone()),
            None => file.objects.remove(key),
        };
        let bytes =
            serde_json::to_vec_pretty(&file).map_err(|e| SyncError::state(self.state_path(), e.into()))?;
        write_atomically(&self.state_path(), &bytes)
    }

    fn lock(&self) -> Result<File, SyncError> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SyncError::state(&path, e))?;
        file.lock().map_err(|e| SyncError::state(&path, e))?;
        Ok(file)
    }

    // ── backlog ─────────────────────────────────────────────────────────────────────

    fn backlog_path(&self, file_name: &str) -> PathBuf {
        self.dir.join("backlog").join(file_name)
    }

    /// Queues `doc` unless the backlog already holds a newer document of that build.
    pub(crate) fn enqueue(&self, file_name: &str, doc: &BuildDocument) -> Result<(), SyncError> {
        let _lock = self.lock()?;
        let path = self.backlog_path(file_name);
        if let Some(queued) = read_doc(&path)?
            && queued.version > doc.version
        {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| SyncError::state(&path, e.into()))?;
        write_atomically(&path, &bytes)
    }

    /// Drops the queued document if `landed_version` covers it (a newer one may have been
    /// queued meanwhile by another process; that one stays).
    pub(crate) fn dequeue(&self, file_name: &str, landed_version: u64) -> Result<(), SyncError> {
        let _lock = self.lock()?;
        let path = self.backlog_path(file_name);
        match read_doc(&path)? {
            Some(queued) if queued.version <= landed_version => {
                std::fs::remove_file(&path).map_err(|e| SyncError::state(&path, e))
            }
            _ => Ok(()),
        }
    }

    /// Every queued document, by file name.
    pub(crate) fn backlog(&self) -> Result<Vec<BuildDocument>, SyncError> {
        let dir = self.dir.join("backlog");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| SyncError::state(&dir, e))? {
            let entry = entry.map_err(|e| SyncError::state(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !name.starts_with(TMP_PREFIX) {
                names.push(name);
            }
        }
        names.sort();
        let mut docs = Vec::new();
        for name in names {
            if let Some(doc) = read_doc(&self.backlog_path(&name))? {
                docs.push(doc);
            }
        }
        Ok(docs)
    }
}

fn read_doc(path: &Path) -> Result<Option<BuildDocument>, SyncError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| SyncError::state(path, e.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SyncError::state(path, e)),
    }
}

/// Temp file in the same directory, fsync, rename, fsync the directory: a crash leaves
/// the old file or the new one, never a torn one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SyncError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |e: std::io::Error| SyncError::state(path, e);
    let mut tmp = tempfile::Builder::new().prefix(TMP_PREFIX).tempfile_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_a_state_dir_serves_one_target() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("sync");
        let state = StateDir::open(dir.clone(), "s3://a/p").expect("open");
        let seen = Seen { e_tag: Some("\"e1\"".into()), version: None, document_version: 3, digest: None };
        state.record("p/aws/n/state.json", Some(&seen)).expect("record");
        let again = StateDir::open(dir.clone(), "s3://a/p").expect("reopen");
        assert_eq!(again.load().expect("load").get("p/aws/n/state.json"), Some(&seen));
        again.record("p/aws/n/state.json", None).expect("forget");
        assert!(again.load().expect("load").is_empty());
        let err = StateDir::open(dir, "gs://other").expect_err("other target");
        assert!(err.to_string().contains("belongs to target s3://a/p"), "{err}");
    }
}
