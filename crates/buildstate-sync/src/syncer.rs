use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use buildstate_core::{BuildDocument, BuildNumber};
use futures_util::TryStreamExt;
use jiff::Timestamp;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::time::Instant;

use crate::retry::{Failure, bounded};
use crate::state::{Seen, StateDir};
use crate::{RemoteEntry, SyncError, SyncOptions, SyncTarget};

/// The object name inside `PREFIX/<provider>/<build-number>/`.
pub(crate) const OBJECT_NAME: &str = "state.json";
/// The provider segment of a document without one.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// Copies build documents to one target and back. See the crate documentation for the
/// conflict and failure semantics.
#[derive(Debug)]
pub struct Syncer {
    pub(crate) target: SyncTarget,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) options: SyncOptions,
    pub(crate) state: StateDir,
    /// In-memory copy of the state file's records, so a push needs no disk read.
    seen: Mutex<BTreeMap<String, Seen>>,
}

/// Why reading one copy failed.
pub(crate) enum ReadError {
    Sync(SyncError),
    /// The endpoint kept failing within the bound.
    Unreachable {
        attempts: u32,
        last: String,
    },
}

impl Syncer {
    /// A syncer for `target` that keeps its ETags and backlog in `state_dir` (one
    /// directory per target), with the default options.
    pub fn new(target: SyncTarget, state_dir: impl Into<PathBuf>) -> Result<Self, SyncError> {
        Self::with_options(target, state_dir, SyncOptions::default())
    }

    pub fn with_options(
        target: SyncTarget,
        state_dir: impl Into<PathBuf>,
        options: SyncOptions,
    ) -> Result<Self, SyncError> {
        let state = StateDir::open(state_dir.into(), target.url())?;
        let seen = Mutex::new(state.load()?);
        let store = crate::connect::connect(&target, &options)?;
        Ok(Syncer { target, store, options, state, seen })
    }

    pub fn target(&self) -> &SyncTarget {
        &self.target
    }

    pub fn options(&self) -> &SyncOptions {
        &self.options
    }

    pub fn state_dir(&self) -> &std::path::Path {
        self.state.dir()
    }

    /// Where `doc`'s copy lives: `PREFIX/<provider>/<build-number>/state.json`.
    pub fn location_of(&self, doc: &BuildDocument) -> String {
        self.path_of(doc).to_string()
    }

    /// The documents waiting in the backlog, oldest build number first.
    pub fn backlog(&self) -> Result<Vec<BuildDocument>, SyncError> {
        self.state.backlog()
    }

    pub(crate) fn path_of(&self, doc: &BuildDocument) -> Path {
        self.path_for(provider_of(doc), &doc.build_number)
    }

    pub(crate) fn path_for(&self, provider: &str, number: &BuildNumber) -> Path {
        // `join` percent-encodes anything that is not a plain segment (`/`, `..`, …), so a
        // provider name can never climb out of the prefix.
        let provider = if provider.is_empty() { UNKNOWN_PROVIDER } else { provider };
        self.target.prefix().clone().join(provider).join(number.as_str()).join(OBJECT_NAME)
    }

    pub(crate) fn deadline(&self) -> Instant {
        Instant::now() + self.options.op_timeout
    }

    fn seen_map(&self) -> MutexGuard<'_, BTreeMap<String, Seen>> {
        // A panic while holding this lock cannot leave the map half-updated (single
        // insert/remove), so a poisoned lock is still good data.
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn seen(&self, key: &str) -> Option<Seen> {
        self.seen_map().get(key).cloned()
    }

    /// Remembers what we last saw of `key`, in memory and in the state file.
    pub(crate) fn remember(&self, key: &str, seen: Seen) -> Result<(), SyncError> {
        self.seen_map().insert(key.to_owned(), seen.clone());
        self.state.record(key, Some(&seen))
    }

    pub(crate) fn failure(&self, failure: Failure) -> SyncError {
        match failure {
            Failure::Permanent(source) => SyncError::Remote { target: self.target.url().to_owned(), source },
            Failure::GaveUp { attempts, last } => SyncError::Unreachable {
                target: self.target.url().to_owned(),
                bound: self.options.op_timeout,
                attempts,
                last,
            },
        }
    }

    /// Reads and validates one copy; `None` if there is none.
    pub(crate) async fn read(
        &self,
        path: &Path,
        deadline: Instant,
    ) -> Result<Option<(BuildDocument, ObjectMeta)>, ReadError> {
        let store = &self.store;
        let fetched = bounded(&self.options, deadline, || async move {
            let got = store.get(path).await?;
            let meta = got.meta.clone();
            Ok((got.bytes().await?, meta))
        })
        .await;
        let (bytes, meta) = match fetched {
            Ok(v) => v,
            Err(Failure::Permanent(object_store::Error::NotFound { .. })) => return Ok(None),
            Err(Failure::GaveUp { attempts, last }) => return Err(ReadError::Unreachable { attempts, last }),
            Err(f) => return Err(ReadError::Sync(self.failure(f))),
        };
        let corrupt =
            |reason: String| ReadError::Sync(SyncError::Corrupt { location: path.to_string(), reason });
        let doc: BuildDocument = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        // Validate as an import would, and hand back the normalized document.
        let doc = BuildDocument::from_parts(doc.into_parts().map_err(|e| corrupt(e.to_string()))?);
        Ok(Some((doc, meta)))
    }

    /// Pulls the copy of build `number` — under `provider` if given, else wherever the
    /// listing finds it — and remembers its ETag, so that pushing the build's next state
    /// from here replaces exactly this copy.
    pub async fn pull(
        &self,
        number: &BuildNumber,
        provider: Option<&str>,
    ) -> Result<Option<BuildDocument>, SyncError> {
        let deadline = self.deadline();
        let path = match provider {
            Some(provider) => self.path_for(provider, number),
            None => {
                let entries = self.list_until(deadline).await?;
                let found: Vec<_> = entries.into_iter().filter(|e| &e.number == number).collect();
                match found.as_slice() {
                    [] => return Ok(None),
                    [one] => Path::parse(&one.location).map_err(|e| SyncError::Corrupt {
                        location: one.location.clone(),
                        reason: e.to_string(),
                    })?,
                    many => {
                        let providers =
                            many.iter().map(|e| e.provider.as_str()).collect::<Vec<_>>().join(", ");
                        return Err(SyncError::Ambiguous { number: number.to_string(), providers });
                    }
                }
            }
        };
        let (doc, meta) = match self.read(&path, deadline).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(ReadError::Sync(e)) => return Err(e),
            Err(ReadError::Unreachable { attempts, last }) => {
                return Err(self.failure(Failure::GaveUp { attempts, last }));
            }
        };
        if &doc.build_number != number {
            return Err(SyncError::Corrupt {
                location: path.to_string(),
                reason: format!("it holds build {}", doc.build_number),
            });
        }
        self.remember(path.as_ref(), Seen::of(meta.e_tag, meta.version, &doc))?;
        Ok(Some(doc))
    }

    /// Every build copy under the prefix, by provider and number.
    pub async fn list(&self) -> Result<Vec<RemoteEntry>, SyncError> {
        self.list_until(self.deadline()).await
    }

    pub(crate) async fn list_until(&self, deadline: Instant) -> Result<Vec<RemoteEntry>, SyncError> {
        let prefix = self.target.prefix();
        let prefix = (!prefix.is_root()).then_some(prefix);
        let store = &self.store;
        let metas: Vec<ObjectMeta> = bounded(&self.options, deadline, || store.list(prefix).try_collect())
            .await
            .map_err(|f| self.failure(f))?;
        let mut entries: Vec<RemoteEntry> = metas.into_iter().filter_map(|m| self.entry(m)).collect();
        entries.sort_by(|a, b| (&a.provider, &a.number).cmp(&(&b.provider, &b.number)));
        Ok(entries)
    }

    fn entry(&self, meta: ObjectMeta) -> Option<RemoteEntry> {
        let parts: Vec<String> =
            meta.location.prefix_match(self.target.prefix())?.map(|p| p.as_ref().to_owned()).collect();
        let [provider, number, name] = parts.as_slice() else { return None };
        if name != OBJECT_NAME {
            return None;
        }
        let number = BuildNumber::new(number).ok()?;
        let location = meta.location.to_string();
        let version = self
            .seen(&location)
            .filter(|s| same_etag(s.e_tag.as_deref(), meta.e_tag.as_deref()))
            .map(|s| s.document_version);
        let last_modified = Timestamp::from_microsecond(meta.last_modified.timestamp_micros())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        Some(RemoteEntry {
            number,
            provider: provider.clone(),
            location,
            size: meta.size,
            last_modified,
            e_tag: meta.e_tag,
            version,
        })
    }
}

pub(crate) fn provider_of(doc: &BuildDocument) -> &str {
    doc.provider.as_deref().filter(|p| !p.is_empty()).unwrap_or(UNKNOWN_PROVIDER)
}

/// ETags compared as opaque values, ignoring quoting and the weak marker: some stores
/// quote them in one API and not in another (GCS listings vs. heads).
pub(crate) fn same_etag(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |t: &str| t.trim_start_matches("W/").trim_matches('"').to_owned();
    match (a, b) {
        (Some(a), Some(b)) => norm(a) == norm(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_without_quotes_or_weak_marker() {
        assert!(same_etag(Some("\"abc\""), Some("abc")));
        assert!(same_etag(Some("W/\"abc\""), Some("\"abc\"")));
        assert!(!same_etag(Some("abc"), Some("abd")));
        assert!(!same_etag(None, None), "an unknown ETag never matches");
    }
}
