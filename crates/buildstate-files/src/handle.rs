//! The store handle, and how units of work run on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use buildstate_store::{Backend, Mode, StoreError, StoreResult, Work};

use crate::catalog_file::Catalog;
use crate::layout::{self, Layout};
use crate::lock::{self, DirLock};
use crate::tx::FileTx;
use crate::{atomic, disk};

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
        self.inner.lock.acquire(Mode::Write).expect("lock")
    }
}

#[async_trait]
impl Backend for FileStore {
    fn location(&self) -> String {
        self.dir().display().to_string()
    }

    /// One unit of work off the async threads (`run_blocking`), under the directory's lock (shared to
    /// read, exclusive to write), so that waiting out another process's lock and the
    /// fsyncs of the commit never hold up the async threads that drive heartbeats,
    /// output pumps and timeouts. The lock excludes every other writer from the first
    /// read to the commit, so there is no contention to retry.
    async fn transact<T: Send + 'static>(
        &self,
        mode: Mode,
        what: &'static str,
        mut work: Work<T>,
    ) -> StoreResult<T> {
        let inner = Arc::clone(&self.inner);
        buildstate_store::run_blocking("file store worker thread", move |runtime| {
            let _span = tracing::debug_span!("file store", what).entered();
            let _held = inner.lock.acquire(mode)?;
            let mut tx = FileTx::new(&inner.layout, mode);
            // The primitives never wait on anything async; the runtime handle is there
            // in case a future ever does.
            let value = buildstate_store::finish_on_this_thread(runtime, work(&mut tx))?;
            tx.commit()?;
            Ok(value)
        })
        .await
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
        let _held = lock.acquire(Mode::Write)?;
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
    if !layout.catalog_file().is_file() {
        disk::write_catalog(layout, &Catalog::default())?;
    }
    sweep(layout)?;
    // A write transaction that lists the builds writes the index if it is missing or
    // behind the documents.
    let mut tx = FileTx::new(layout, Mode::Write);
    tx.entries()?;
    tx.commit()
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
