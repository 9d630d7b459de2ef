//! Whole-file reads and atomic whole-file replacement.
//!
//! A file is never written in place. The new content goes to a temporary file in the
//! same directory (a rename is atomic only within one file system), is flushed to disk
//! (`sync_all`), renamed over the old name, and the directory is flushed so that the
//! rename itself survives a power loss. A reader therefore sees the old file or the new
//! one, never a torn mix, and a process killed at any instant leaves one or the other
//! plus, at worst, a stray temporary file that every listing ignores.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::Path;

use buildstate_store::StoreResult;

use crate::error::io;

/// Temporary files start with this (a dot: hidden, and never a build number, which
/// starts with a letter or digit) and end with [`TEMP_SUFFIX`].
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
pub(crate) const TEMP_SUFFIX: &str = ".partial";

/// Replaces `path` with `bytes`, atomically and durably.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> StoreResult<()> {
    let dir = parent(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
    // tempfile creates files 0600; a store shared by a team needs the usual mode, so
    // ask for 0666 and let the umask decide, as for any file a program creates.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(|e| io("create a temporary file", dir, e))?;
    tmp.write_all(bytes).map_err(|e| io("write a temporary file", tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| io("flush a temporary file", tmp.path(), e))?;
    // On failure the temporary file is removed when `PersistError` drops.
    tmp.persist(path).map_err(|e| io("rename a temporary file", path, e.error))?;
    sync_dir(dir)
}

/// Flushes a directory's entries (new names, renames, removals) to disk.
pub(crate) fn sync_dir(dir: &Path) -> StoreResult<()> {
    // Directories cannot be opened as files on Windows; there, rename is durable enough
    // once the file itself was flushed.
    if cfg!(windows) {
        return Ok(());
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("flush a directory", dir, e))
}

/// Removes `path` durably; a file already gone is not an error.
pub(crate) fn remove(path: &Path) -> StoreResult<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove a file", path, e)),
    }
}

/// The whole file as text, or `None` if it does not exist.
pub(crate) fn read(path: &Path) -> StoreResult<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| crate::error::corrupt(path, format!("not UTF-8 text ({e})"))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read a file", path, e)),
    }
}

/// The names in `dir` ending in `.json` that a writer could have made: no temporary
/// files, nothing hidden. The extension is stripped.
pub(crate) fn json_stems(dir: &Path) -> StoreResult<Vec<String>> {
    let entries = fs::read_dir(dir).map_err(|e| io("list a directory", dir, e))?;
    let mut stems = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("list a directory", dir, e))?;
        let name = entry.file_name();
        // A name that is not UTF-8 is nothing this store wrote.
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".json")
            && !stem.is_empty()
            && !stem.starts_with('.')
        {
            stems.push(stem.to_owned());
        }
    }
    stems.sort();
    Ok(stems)
}

/// Removes the temporary files a writer killed mid-write left in `dir`. Only safe while
/// the store's exclusive lock is held: every live writer holds it while its temporary
/// file exists, so any temporary file seen then belongs to a dead one.
pub(crate) fn sweep_temporaries(dir: &Path) -> StoreResult<usize> {
    let entries = fs::read_dir(dir).map_err(|e| io("list a directory", dir, e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io("list a directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove a stray temporary file", &path, e)),
            }
        }
    }
    Ok(removed)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
