//! From file-system faults to `StoreError`, always naming the file.

use std::fmt::Display;
use std::path::Path;

use buildstate_core::DocumentError;
use buildstate_store::StoreError;

/// An I/O error on `path`, while doing `context`.
pub(crate) fn io(context: &'static str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend { context, source: format!("{}: {e}", path.display()).into() }
}

/// A file of the store that does not decode (edited by hand, truncated by a full disk, …):
/// an error that names the file and what is wrong with it, never a panic.
pub(crate) fn corrupt(path: &Path, what: impl Display) -> StoreError {
    StoreError::Backend {
        context: "corrupt file in the file store",
        source: format!("{}: {what}; restore or fix the file", path.display()).into(),
    }
}

/// A build document that cannot be read or does not decode (edited by hand, replaced by
/// a FIFO or a link, truncated, …): the same kind of error as a bad import document —
/// which it is, a build's file being its export document — naming the file.
pub(crate) fn bad_document(path: &Path, e: DocumentError) -> StoreError {
    let at = |what: &dyn Display| format!("{}: {what}; restore or fix the file", path.display());
    StoreError::Document(match e {
        DocumentError::Malformed(what) => DocumentError::Malformed(at(&what)),
        DocumentError::Inconsistent(what) => DocumentError::Inconsistent(at(&what)),
        // Its message has no room for the file; say it as a document that is not ours.
        format @ DocumentError::Format(_) => DocumentError::Malformed(at(&format)),
    })
}
