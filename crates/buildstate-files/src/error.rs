//! From file-system faults to `StoreError`, always naming the file.

use std::fmt::Display;
use std::path::Path;

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
