//! How two documents of one build relate: the same, one ahead of the other on the same
//! line of history, or diverged. Written once for push and status, so that "in sync"
//! and "safe to replace" mean the same thing everywhere.

use buildstate_core::BuildDocument;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relation {
    Same,
    /// `remote` is an earlier state of `local`'s history: replacing it loses nothing.
    LocalAhead,
    /// `local` is an earlier state of `remote`'s history: pull.
    RemoteAhead,
    /// Two machines continued the build from one copy: each holds history the other
    /// lacks. Never resolved by overwriting; a person decides.
    Diverged,
}

/// Compares two documents of the same build (the caller checked the build id).
///
/// History is append-only, so "earlier state of the same line" is "its history is a
/// prefix of the other's, and its version is lower". Changes that leave no history
/// event (metadata, artifacts) cannot be ordered that way; within one line of history
/// the higher version wins, as it always did.
pub(crate) fn relation(local: &BuildDocument, remote: &BuildDocument) -> Relation {
    if local == remote {
        return Relation::Same;
    }
    let prefix = |a: &BuildDocument, b: &BuildDocument| {
        a.history.len() <= b.history.len() && a.history.iter().zip(&b.history).all(|(x, y)| x == y)
    };
    if local.version > remote.version && prefix(remote, local) {
        Relation::LocalAhead
    } else if remote.version > local.version && prefix(local, remote) {
        Relation::RemoteAhead
    } else {
        Relation::Diverged
    }
}

/// A fingerprint of a document's content, kept with the ETag we last saw, so that
/// "the copy is the one we wrote" can be answered without downloading it.
pub(crate) fn digest(doc: &BuildDocument) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let hash = Sha256::digest(&bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}
