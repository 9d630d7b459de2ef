//! The `file://` target: object_store's `LocalFileSystem` plus the one thing it lacks,
//! `PutMode::Update` (replace-if-unchanged), so that a local directory follows the same
//! conditional-write contract as the clouds and the tests exercise the same code.

use std::fs::{File, OpenOptions};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UpdateVersion,
};

use crate::SyncTarget;

pub(super) fn connect(target: &SyncTarget) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(target.dir()).map_err(generic)?;
    // fsync: a copy exists to survive the machine; it also makes two writes within one
    // clock tick (which could share an mtime-based ETag) practically impossible.
    let inner = LocalFileSystem::new_with_prefix(target.dir())?.with_fsync(true);
    Ok(Arc::new(LockedLocal { inner }))
}

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) }
}

#[derive(Debug)]
struct LockedLocal {
    inner: LocalFileSystem,
}

impl std::fmt::Display for LockedLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockedLocal({})", self.inner)
    }
}

impl LockedLocal {
    /// An exclusive lock on `<object>.lock`, held until the returned file is dropped.
    /// flock locks conflict between open file descriptions, so this excludes other
    /// processes and other tasks of this one alike.
    async fn lock(&self, location: &Path) -> Result<File> {
        let path = self.inner.path_to_filesystem(location)?;
        let mut lock = path.into_os_string();
        lock.push(".lock");
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = std::path::Path::new(&lock).parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).truncate(false).write(true).open(&lock)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(generic)?
        .map_err(generic)
    }

    /// Replace-if-unchanged: compare and write under the lock, so no other writer of this
    /// directory can slip in between.
    async fn update(
        &self,
        location: &Path,
        payload: PutPayload,
        expected: UpdateVersion,
    ) -> Result<PutResult> {
        let _lock = self.lock(location).await?;
        let precondition = |why: String| object_store::Error::Precondition {
            path: location.to_string(),
            source: why.into(),
        };
        let current = match self.inner.head(location).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Err(precondition("object is gone".into())),
            Err(e) => return Err(e),
        };
        if current.e_tag != expected.e_tag {
            return Err(precondition(format!("ETag is {:?}, expected {:?}", current.e_tag, expected.e_tag)));
        }
        self.inner.put_opts(location, payload, PutMode::Overwrite.into()).await
    }
}

#[async_trait]
impl ObjectStore for LockedLocal {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        match opts.mode {
            PutMode::Update(expected) => self.update(location, payload, expected).await,
            // Create is atomic on its own (hard link); the lock keeps it from interleaving
            // with an update's compare-and-write.
            _ => {
                let _lock = self.lock(location).await?;
                self.inner.put_opts(location, payload, opts).await
            }
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
