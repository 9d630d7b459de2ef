//! Whole-file reads and atomic whole-file replacement.
//!
//! A file is never written in place. The new content goes to a temporary file in the
//! same directory (a rename is atomic only within one file system), is flushed to disk
//! (`sync_all`), renamed over the old name, and the directory is flushed so that the
//! rename itself survives a power loss. A reader therefore sees the old file or the new
//! one, never a torn mix, and a process killed at any instant leaves one or the other
//! plus, at worst, a stray temporary file that every listing ignores.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
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

/// Largest file of the store read: a build document is capped like an import document
/// (README, text policy), and no catalog, index, lease or registry comes near it.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file of the store was not read as text.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// A symbolic link, FIFO, device, socket or directory where a file was expected: a
    /// store never writes one, and reading one could block for ever (a FIFO) or never
    /// end (`/dev/zero`).
    NotRegular(&'static str),
    /// Over [`MAX_FILE_BYTES`]; nothing past the cap was read.
    TooLarge,
    NotUtf8(std::string::FromUtf8Error),
    /// The file system refused (permissions, I/O error).
    Io(std::io::Error),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            Unreadable::TooLarge => {
                write!(f, "it is larger than the {} MiB a store's file may be", MAX_FILE_BYTES >> 20)
            }
            Unreadable::NotUtf8(e) => write!(f, "not UTF-8 text ({e})"),
            Unreadable::Io(e) => write!(f, "cannot read it: {e}"),
        }
    }
}

/// The whole file as text, `Ok(None)` if it does not exist, else [`Unreadable`].
///
/// Every read of the store goes through here: anything in the directory may have been
/// put there by hand. The name is checked without following it (`lstat`), the file is
/// opened without blocking (a FIFO swapped in after the check does not hang the open),
/// and the opened file must be the regular file that was checked (`fstat`: same device
/// and inode), so nothing swapped in between is read. At most one byte past the cap is
/// read, whatever the file claims its size is.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>, Unreadable> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Unreadable::Io(e)),
    };
    check_regular(&meta)?;
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Unreadable::Io(e)),
    };
    let opened = file.metadata().map_err(Unreadable::Io)?;
    check_regular(&opened)?;
    if !same_file(&meta, &opened) {
        return Err(Unreadable::NotRegular("a file that was replaced while it was opened"));
    }
    if opened.len() > MAX_FILE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(Unreadable::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    String::from_utf8(bytes).map(Some).map_err(Unreadable::NotUtf8)
}

/// [`read_text`] for files whose damage is a store fault (catalog, index, leases, …).
pub(crate) fn read(path: &Path) -> StoreResult<Option<String>> {
    read_text(path).map_err(|e| match e {
        Unreadable::Io(e) => io("read a file", path, e),
        other => crate::error::corrupt(path, other),
    })
}

fn check_regular(meta: &fs::Metadata) -> Result<(), Unreadable> {
    let t = meta.file_type();
    if t.is_file() {
        return Ok(());
    }
    Err(Unreadable::NotRegular(if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else {
        special_kind(t)
    }))
}

#[cfg(unix)]
fn special_kind(t: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: fs::FileType) -> &'static str {
    "not a file"
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    true
}

/// Opens for reading without blocking: a FIFO swapped in after the `lstat` returns at
/// once instead of waiting for a writer (and is then refused as not a regular file).
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
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
