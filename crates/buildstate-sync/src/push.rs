use buildstate_core::BuildDocument;
use object_store::{PutMode, PutPayload, UpdateVersion};
use sha2::{Digest, Sha256};

use crate::lineage::{Relation, relation};
use crate::retry::{Failure, bounded};
use crate::state::Seen;
use crate::syncer::{ReadError, provider_of};
use crate::{FlushReport, PushOutcome, SyncError, Syncer};

impl Syncer {
    /// Writes `doc`'s copy with a conditional write, never over a copy that changed
    /// since we last saw it:
    ///
    /// - no copy seen before: create-if-absent;
    /// - a copy seen before (one we wrote, pulled, or found to be an earlier state of
    ///   our own history), older than `doc`: replace-if-unchanged, with its ETag/version;
    /// - a copy seen before that is as new as `doc` or newer: no write, compare (below);
    /// - the condition failed (another writer got there first): re-read the copy and
    ///   compare histories ([`relation`]). Same document: `AlreadyThere`. Another
    ///   build: `OtherBuild`. An earlier state of our history: try again against what we
    ///   just read, at most `max_conflict_rounds` times. A later state of it:
    ///   `RemoteNewer`. Anything else is `Diverged`: two machines continued the build
    ///   from one copy. Neither of the last two is remembered as a base, so no later
    ///   push can replace them on the strength of having seen them.
    ///
    /// The whole push — retries with backoff on refused connections, 5xx and timeouts,
    /// re-reads included — ends within `SyncOptions::op_timeout`. If the endpoint is
    /// still failing then, the document goes to the backlog and the push returns
    /// `Backlogged`; other failures also leave it in the backlog and return the error.
    pub async fn push(&self, doc: &BuildDocument) -> Result<PushOutcome, SyncError> {
        let deadline = self.deadline();
        let path = self.path_of(doc);
        let key = path.to_string();
        let queue_name = backlog_name(doc);
        let body = serde_json::to_vec_pretty(doc)
            .map_err(|e| SyncError::Corrupt { location: key.clone(), reason: e.to_string() })?;
        let payload = PutPayload::from(body);
        // What we last saw of the copy. A write is conditional on it still being there,
        // and is only attempted when it is older than `doc`: a copy we know to be as new
        // or newer (one we pulled, or saw win a race) is re-read and compared instead.
        let mut expected: Option<Seen> = self.seen(&key);

        let store = &self.store;
        for _round in 0..=self.options.max_conflict_rounds {
            if expected.as_ref().is_none_or(|seen| seen.document_version < doc.version) {
                let created = expected.is_none();
                let mode = match &expected {
                    Some(seen) => PutMode::Update(UpdateVersion {
                        e_tag: seen.e_tag.clone(),
                        version: seen.version.clone(),
                    }),
                    None => PutMode::Create,
                };
                let written = bounded(&self.options, deadline, || {
                    store.put_opts(&path, payload.clone(), mode.clone().into())
                })
                .await;
                match written {
                    Ok(put) => {
                        let seen = Seen::of(put.e_tag, put.version, doc);
                        self.remember(&key, seen)?;
                        self.state.dequeue(&queue_name, doc.version)?;
                        return Ok(PushOutcome::Pushed { created });
                    }
                    // Somebody wrote the copy since we last saw it (or before our create).
                    Err(Failure::Permanent(
                        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                    )) => {}
                    // Our copy was deleted under us: nothing to protect, create it again.
                    Err(Failure::Permanent(object_store::Error::NotFound { .. })) => {
                        expected = None;
                        continue;
                    }
                    Err(Failure::GaveUp { last, .. }) => return self.backlogged(doc, &queue_name, last),
                    Err(failure) => {
                        self.state.enqueue(&queue_name, doc)?;
                        return Err(self.failure(failure));
                    }
                }
            }

            let (remote, meta) = match self.read(&path, deadline).await {
                Ok(Some(found)) => found,
                Ok(None) => {
                    expected = None;
                    continue;
                }
                Err(ReadError::Unreachable { last, .. }) => return self.backlogged(doc, &queue_name, last),
                Err(ReadError::Sync(e)) => {
                    self.state.enqueue(&queue_name, doc)?;
                    return Err(e);
                }
            };
            if remote.build_id != doc.build_id {
                // Never pushable to this path: drop it from the backlog, report it.
                self.state.dequeue(&queue_name, u64::MAX)?;
                return Ok(PushOutcome::OtherBuild { remote_build_id: remote.build_id });
            }
            let seen = Seen::of(meta.e_tag, meta.version, &remote);
            let (local_version, remote_version) = (doc.version, remote.version);
            match relation(doc, &remote) {
                Relation::Same => {
                    self.remember(&key, seen)?;
                    self.state.dequeue(&queue_name, doc.version)?;
                    return Ok(PushOutcome::AlreadyThere);
                }
                Relation::LocalAhead => {
                    tracing::debug!(location = %key, remote = remote.version, ours = doc.version, "sync: copy is older, retrying");
                    self.remember(&key, seen.clone())?;
                    expected = Some(seen);
                }
                Relation::RemoteAhead => {
                    // Whatever we queued for this build is older than the copy.
                    self.state.dequeue(&queue_name, doc.version)?;
                    return Ok(PushOutcome::RemoteNewer { local_version, remote_version });
                }
                Relation::Diverged => {
                    tracing::warn!(location = %key, local_version, remote_version, "sync: the copy diverged from the local build; not overwritten");
                    // Retrying cannot help: a person decides. The backlog keeps nothing.
                    self.state.dequeue(&queue_name, u64::MAX)?;
                    return Ok(PushOutcome::Diverged { local_version, remote_version });
                }
            }
        }
        self.state.enqueue(&queue_name, doc)?;
        Err(SyncError::Contended { location: key, rounds: self.options.max_conflict_rounds + 1 })
    }

    fn backlogged(
        &self,
        doc: &BuildDocument,
        queue_name: &str,
        error: String,
    ) -> Result<PushOutcome, SyncError> {
        tracing::warn!(
            target_url = %self.target,
            build = %doc.build_number,
            version = doc.version,
            %error,
            "sync: endpoint unavailable, copy queued in the backlog"
        );
        self.state.enqueue(queue_name, doc)?;
        Ok(PushOutcome::Backlogged { error })
    }

    /// Pushes every queued document, oldest build number first. Stops at the first one
    /// that is backlogged again (the endpoint is still failing: no point waiting out the
    /// bound once per entry) and counts the rest as remaining.
    pub async fn flush_backlog(&self) -> Result<FlushReport, SyncError> {
        let queued = self.state.backlog()?;
        let total = queued.len();
        let mut report = FlushReport::default();
        for (i, doc) in queued.into_iter().enumerate() {
            let outcome = self.push(&doc).await;
            let still_down = matches!(outcome, Ok(PushOutcome::Backlogged { .. }));
            report.outcomes.push((doc.build_number.clone(), outcome));
            if still_down {
                report.remaining = total - i - 1;
                break;
            }
        }
        Ok(report)
    }
}

/// One backlog file per build copy: `<provider>@<number>.json`. The provider segment is
/// the encoded path segment (no `/`), and a build number never holds `@`, so distinct
/// copies never share a file.
pub(crate) fn backlog_name(doc: &BuildDocument) -> String {
    backlog_file(provider_of(doc), doc.build_number.as_str())
}

/// The longest file name common file systems allow, in bytes.
const MAX_FILE_NAME: usize = 255;
/// Hex digits of the digest that keeps shortened backlog names distinct.
const DIGEST_HEX: usize = 32;

fn backlog_file(provider: &str, number: &str) -> String {
    let provider = object_store::path::PathPart::from(provider);
    let provider = provider.as_ref();
    let plain = format!("{provider}@{number}.json");
    if plain.len() <= MAX_FILE_NAME {
        return plain;
    }
    // A long provider with one of the longest build numbers: the name keeps what fits of
    // both and is made unique by a digest of the whole. `~` is in neither (the provider
    // is percent-encoded, a build number is `a-z 0-9 . _ -`), so no plain name is one.
    // The backlog is read by listing the directory, never by parsing names.
    let digest: String = Sha256::digest(format!("{provider}@{number}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..DIGEST_HEX]
        .to_owned();
    let room = MAX_FILE_NAME - "@~.json".len() - DIGEST_HEX;
    let provider = &provider[..floor_char_boundary(provider, room / 2)];
    let number = &number[..floor_char_boundary(number, room - provider.len())];
    format!("{provider}@{number}~{digest}.json")
}

/// The largest index at most `at` that starts a character of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_names_are_one_per_copy_and_stay_in_the_directory() {
        let name = backlog_file;
        assert_eq!(name("aws", "rhel-9-base-aws-20260212-001"), "aws@rhel-9-base-aws-20260212-001.json");
        // A provider cannot name a path: `/` and `..` are encoded.
        assert!(!name("../../etc", "n").contains('/'));
        // `a@b` + `c` cannot be confused with `a` + `b@c`: a build number never holds `@`.
        assert!(buildstate_core::BuildNumber::new("b@c").is_err());
    }

    #[test]
    fn backlog_names_of_the_longest_numbers_fit_a_file_name() {
        let longest = "n".repeat(buildstate_core::MAX_BUILD_NUMBER_BYTES);
        let other = format!("{}m", &longest[..longest.len() - 1]);
        for provider in ["aws", &"p".repeat(64), &"é/".repeat(100)] {
            let name = backlog_file(provider, &longest);
            assert!(name.len() <= MAX_FILE_NAME, "{} bytes: {name}", name.len());
            assert!(name.ends_with(".json") && !name.contains('/'), "{name}");
            assert_ne!(name, backlog_file(provider, &other), "distinct numbers, distinct files");
            assert_eq!(name, backlog_file(provider, &longest), "stable");
        }
        assert_eq!(backlog_file("aws", &longest), format!("aws@{longest}.json"), "plain while it fits");
    }
}
