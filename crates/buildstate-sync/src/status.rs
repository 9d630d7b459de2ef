use std::collections::{BTreeMap, BTreeSet};

use buildstate_core::BuildDocument;

use crate::lineage::{Relation, digest, relation};
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

    /// How `doc` stands against the copy in the listing. Without downloading only when
    /// the copy is, by ETag and content, the one we last wrote or read and that is
    /// exactly `doc`; otherwise the copy is read and the two histories compared, so
    /// that two machines that went separate ways from one copy are `Diverged`, never
    /// "in sync" because their version numbers happen to agree.
    async fn compare(&self, doc: &BuildDocument, entry: Option<&RemoteEntry>) -> (Option<u64>, SyncState) {
        let Some(entry) = entry else { return (None, SyncState::MissingRemotely) };
        let ours = self.seen(&entry.location).filter(|seen| {
            entry.version == Some(seen.document_version)
                && seen.digest.as_deref() == Some(digest(doc).as_str())
        });
        if ours.is_some() {
            return (Some(doc.version), SyncState::InSync);
        }
        let (remote, meta) = match self.read(&self.path_of(doc), self.deadline()).await {
            Ok(Some(found)) => found,
            Ok(None) => return (None, SyncState::MissingRemotely),
            Err(ReadError::Sync(e)) => return (None, SyncState::Unknown { error: e.to_string() }),
            Err(ReadError::Unreachable { last, .. }) => return (None, SyncState::Unknown { error: last }),
        };
        if remote.build_id != doc.build_id {
            let error = format!("the copy holds another build ({})", remote.build_id);
            return (Some(remote.version), SyncState::Unknown { error });
        }
        let state = match relation(doc, &remote) {
            Relation::Same => SyncState::InSync,
            Relation::LocalAhead => SyncState::LocalNewer,
            Relation::RemoteAhead => SyncState::RemoteNewer,
            Relation::Diverged => SyncState::Diverged,
        };
        // A copy on our own line of history, not ahead of us, may be the base of the
        // next push; a diverged or newer one must not be.
        if matches!(state, SyncState::InSync | SyncState::LocalNewer) {
            let seen = Seen::of(meta.e_tag, meta.version, &remote);
            if let Err(e) = self.remember(&entry.location, seen) {
                tracing::warn!(error = %e, "sync: cannot record the copy's ETag");
            }
        }
        (Some(remote.version), state)
    }
}
