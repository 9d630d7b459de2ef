//! The store handle, and how transactions run on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use buildstate_store::{StoreError, StoreResult};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::layout::{self, Layout};
use crate::lock::{self, DirLock, Mode};
use crate::snapshot::{Snapshot, Txn};
use crate::{atomic, catalog_file::Catalog};

/// The JSON-file store. Cheap to clone: clones share one lock handle.
///
/// Any number of handles, in this process or others on the same machine, may use one
/// directory at once: every write is a transaction under the directory's exclusive lock.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: Layout,
    lock: DirLock,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory and its layout if missing.
    ///
    /// Refuses (`StoreError::Unavailable`) a directory whose `format` marker says it was
    /// written by a newer buildstate, or is not a marker at all.
    pub fn open(dir: impl AsRef<Path>) -> StoreResult<FileStore> {
        Self::open_with_patience(dir.as_ref(), lock::BUSY_LIMIT)
    }

    pub(crate) fn open_with_patience(dir: &Path, patience: Duration) -> StoreResult<FileStore> {
        let layout = Layout::new(dir);
        let lock = prepare(&layout, patience).map_err(|e| match e {
            // Unreadable, not a directory, a corrupt file met while indexing, …: say so
            // about this store, as the SQLite backend does about its file.
            StoreError::Backend { context, source } => StoreError::Unavailable {
                location: dir.display().to_string(),
                reason: format!("{context}: {source}"),
            },
            other => other,
        })?;
        Ok(FileStore { inner: Arc::new(Inner { layout, lock }) })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.inner.layout.root()
    }

    /// Holds the exclusive lock, as a writer in the middle of a transaction would.
    #[cfg(test)]
    pub(crate) fn inner_lock_for_tests(&self) -> crate::lock::Held<'_> {
        self.inner.lock.acquire(Mode::Exclusive).expect("lock")
    }

    /// Runs `f` under the shared lock: a consistent view of every file.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> StoreResult<T>) -> StoreResult<T> {
        on_blocking_thread(|| {
            let _held = self.inner.lock.acquire(Mode::Shared)?;
            f(&Snapshot::new(&self.inner.layout))
        })
    }

    /// Runs `f` under the exclusive lock: read the files, decide, write. Each file is
    /// replaced atomically; a transaction that writes several files (a create writes
    /// the document, then the index) is ordered so that a crash between them leaves
    /// something the next transaction repairs (see `index.rs`).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Txn<'_>) -> StoreResult<T>) -> StoreResult<T> {
        on_blocking_thread(|| {
            let _held = self.inner.lock.acquire(Mode::Exclusive)?;
            f(&Txn::new(&self.inner.layout))
        })
    }
}

/// Checks the marker, opens the lock, and creates or tidies the layout as needed.
fn prepare(layout: &Layout, patience: Duration) -> StoreResult<DirLock> {
    let dir = layout.root();
    let unavailable =
        |reason: String| StoreError::Unavailable { location: dir.display().to_string(), reason };
    std::fs::create_dir_all(dir).map_err(|e| unavailable(format!("cannot create the directory: {e}")))?;
    // The marker first, before anything is created or locked: a store of a newer format
    // is refused untouched.
    let marker = atomic::read(&layout.format_file())?;
    if let Some(text) = &marker {
        layout::check_format(dir, text)?;
    }
    let lock = DirLock::open(&layout.lock_file(), patience)?;
    let complete = marker.is_some()
        && layout.builds_dir().is_dir()
        && layout.leases_dir().is_dir()
        && layout.catalog_file().is_file()
        && layout.index_file().is_file();
    if !complete {
        let _held = lock.acquire(Mode::Exclusive)?;
        create_layout(layout)?;
    } else if let Some(_held) = lock.try_exclusive()? {
        // Nobody is writing: any temporary file is a dead writer's. When somebody is,
        // the sweep waits for a later open; listings ignore them meanwhile.
        sweep(layout)?;
    }
    Ok(lock)
}

/// Creates what is missing, under the exclusive lock (another process may be doing the
/// same at this moment; whoever comes second finds it done).
fn create_layout(layout: &Layout) -> StoreResult<()> {
    let root = layout.root();
    let unavailable =
        |reason: String| StoreError::Unavailable { location: root.display().to_string(), reason };
    match atomic::read(&layout.format_file())? {
        Some(text) => layout::check_format(root, &text)?,
        None => atomic::write(&layout.format_file(), layout::format_marker().as_bytes())?,
    }
    for dir in [layout.builds_dir(), layout.leases_dir()] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let txn = Txn::new(layout);
    if !layout.catalog_file().is_file() {
        txn.save_catalog(&Catalog::default())?;
    }
    sweep(layout)?;
    // Writes the index if it is missing or behind the documents.
    txn.entries().map(drop)
}

fn sweep(layout: &Layout) -> StoreResult<()> {
    let mut removed = 0;
    for dir in [layout.root().to_owned(), layout.builds_dir(), layout.leases_dir()] {
        removed += atomic::sweep_temporaries(&dir)?;
    }
    if removed > 0 {
        tracing::info!(removed, "removed temporary files left by an interrupted writer");
    }
    Ok(())
}

/// Runs blocking work without starving the async runtime.
///
/// On a current-thread runtime (the CLI) there is nothing else to run, so the work runs
/// inline. On a multi-thread runtime `block_in_place` hands this worker's other tasks to
/// another thread first. Outside any runtime it simply runs.
fn on_blocking_thread<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
