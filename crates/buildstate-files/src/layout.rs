//! Where everything lives in the store's directory, and the format marker.

use std::path::{Path, PathBuf};

use buildstate_core::{BuildId, BuildNumber};
use buildstate_store::{StoreError, StoreResult};

/// The version of the directory layout this build writes and reads. A store marked
/// with a larger one was written by a newer buildstate and is refused, not guessed at.
pub const FORMAT_VERSION: u32 = 1;

/// What `DIR/format` holds: `buildstate-files/<version>`.
const FORMAT_PREFIX: &str = "buildstate-files/";

/// Longest build number this store can hold: `<number>.json` must fit in the 255 bytes
/// most file systems allow for a name. Generated numbers stay far below it.
pub(crate) const MAX_NUMBER_BYTES: usize = 250;

#[derive(Clone, Debug)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Layout {
        Layout { root: root.to_owned() }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }

    pub(crate) fn leases_dir(&self) -> PathBuf {
        self.root.join("leases")
    }

    pub(crate) fn build_file(&self, number: &BuildNumber) -> PathBuf {
        self.builds_dir().join(format!("{number}.json"))
    }

    pub(crate) fn lease_file(&self, id: BuildId) -> PathBuf {
        self.leases_dir().join(format!("{id}.json"))
    }

    pub(crate) fn catalog_file(&self) -> PathBuf {
        self.root.join("catalog.json")
    }

    /// `workers.json`: the worker registry, one document for every worker.
    pub(crate) fn workers_file(&self) -> PathBuf {
        self.root.join("workers.json")
    }

    /// `tokens.json`: the API tokens, their secrets' hashes only.
    pub(crate) fn tokens_file(&self) -> PathBuf {
        self.root.join("tokens.json")
    }

    pub(crate) fn index_file(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(crate) fn format_file(&self) -> PathBuf {
        self.root.join("format")
    }

    pub(crate) fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }
}

/// The text of `DIR/format` for this version.
pub(crate) fn format_marker() -> String {
    format!("{FORMAT_PREFIX}{FORMAT_VERSION}\n")
}

/// Checks the text of `DIR/format`: this version or an older one is fine; a newer one,
/// or something that is not a marker at all, makes the store unusable.
pub(crate) fn check_format(root: &Path, text: &str) -> StoreResult<()> {
    let unavailable =
        |reason: String| StoreError::Unavailable { location: root.display().to_string(), reason };
    let version = text.trim().strip_prefix(FORMAT_PREFIX).and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(v) if v <= FORMAT_VERSION => Ok(()),
        Some(v) => Err(unavailable(format!(
            "it was written by a newer buildstate (file-store format {v}; this one reads up to {FORMAT_VERSION}); upgrade buildstate"
        ))),
        None => Err(unavailable(format!(
            "its `format` file does not hold a buildstate file-store marker (expected `{}`)",
            format_marker().trim()
        ))),
    }
}

/// Refuses numbers too long to be a file name here.
pub(crate) fn check_number(number: &BuildNumber) -> StoreResult<()> {
    if number.as_str().len() > MAX_NUMBER_BYTES {
        return Err(StoreError::InvalidInput(format!(
            "build number `{}…` is longer than the {MAX_NUMBER_BYTES} bytes a file store can name a file",
            &number.as_str()[..40]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_markers() {
        let root = Path::new("/s");
        assert!(check_format(root, &format_marker()).is_ok());
        assert!(check_format(root, "buildstate-files/0").is_ok());
        let newer = check_format(root, "buildstate-files/2\n").expect_err("newer");
        assert!(newer.to_string().contains("newer buildstate"), "{newer}");
        for junk in ["", "sqlite", "buildstate-files/x", "buildstate-files/-1"] {
            assert!(matches!(check_format(root, junk), Err(StoreError::Unavailable { .. })), "{junk:?}");
        }
    }

    #[test]
    fn every_valid_number_names_a_file() {
        let longest = BuildNumber::new(&"a".repeat(buildstate_core::MAX_BUILD_NUMBER_BYTES)).expect("valid");
        assert!(check_number(&longest).is_ok());
        // What this store could not name a file after is not a build number at all.
        assert!(BuildNumber::new(&"a".repeat(MAX_NUMBER_BYTES + 1)).is_err());
    }
}
