use std::collections::{BTreeMap, BTreeSet};

use buildstate_core::BuildDocument;

use crate::push::backlog_name;
use crate::state::Seen;
use crate::syncer::{ReadError, provider_of};
use crate::{RemoteEntry, SyncState, SyncStatus, Syncer};

impl Syncer {
    /// How each local build's copy stands. One listing serves every build; a copy is
    /// downloaded only when its ETag is not the one we last wrote or read. Never fails as
    /// a whole: a build whose copy cannot be read is `Unknown` with the reason, and the
    /// backlog (local) is known even with the endpoint down.
    pub async fn status(&self, local: &[BuildDocument]) -> Vec<SyncStatus> {
        let queued: BTreeSet<String> = match self.state.backlog() {
            Ok(docs) => docs.iter().map(backlog_name).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "sync: cannot read the backlog");
                BTreeSet::new()
            }
        };
        let listing: Result<BTreeMap<String, RemoteEntry>, String> = self
            .list()
            .await
            .map(|entries| entries.into_iter().map(|e| (e.location.clone(), e)).collect())
            .map_err(|e| e.to_string());

        let mut statuses = Vec::with_capacity(local.len());
        for doc in local {
            let (remote_version, state) = if queued.contains(&backlog_name(doc)) {
                (None, SyncState::Backlog)
            } else {
                match &listing {
                    Err(error) => (None, SyncState::Unknown { error: error.clone() }),
                    Ok(remote) => self.compare(doc, remote.get(&self.location_of(doc))).await,
                }
            };
            statuses.push(SyncStatus {
                number: doc.build_number.clone(),
                provider: provider_of(doc).to_owned(),
                local_version: doc.version,
                remote_version,
                state,
            });
        }
        statuses
    }

    async fn compare(&self, doc: &BuildDocument, entry: Option<&RemoteEntry>) -> (Option<u64>, SyncState) {
        let Some(entry) = entry else { return (None, SyncState::MissingRemotely) };
        let remote_version = match entry.version {
            Some(v) => v,
            None => match self.read(&self.path_of(doc), self.deadline()).await {
                Ok(Some((remote, _))) if remote.build_id != doc.build_id => {
                    let error = format!("the copy holds another build ({})", remote.build_id);
                    return (Some(remote.version), SyncState::Unknown { error });
                }
                Ok(Some((remote, meta))) => {
                    // What we downloaded is what we have now seen: the next status is
                    // answered from the listing alone, and a push is conditional on it.
                    let seen =
                        Seen { e_tag: meta.e_tag, version: meta.version, document_version: remote.version };
                    if let Err(e) = self.remember(&entry.location, seen) {
                        tracing::warn!(error = %e, "sync: cannot record the copy's ETag");
                    }
                    remote.version
                }
                Ok(None) => return (None, SyncState::MissingRemotely),
                Err(ReadError::Sync(e)) => return (None, SyncState::Unknown { error: e.to_string() }),
                Err(ReadError::Unreachable { last, .. }) => {
                    return (None, SyncState::Unknown { error: last });
                }
            },
        };
        let state = match doc.version.cmp(&remote_version) {
            std::cmp::Ordering::Equal => SyncState::InSync,
            std::cmp::Ordering::Greater => SyncState::LocalNewer,
            std::cmp::Ordering::Less => SyncState::RemoteNewer,
        };
        (Some(remote_version), state)
    }
}
