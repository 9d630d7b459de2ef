//! The JSON-file backend of buildstate: a directory of human-readable documents, one per
//! build, readable with `jq` and safe under concurrent processes on one machine.
//!
//! Meant for small teams and durable, inspectable copies of build state (a directory
//! on a shared disk, in a backup, in a repository), not for fleets: every call lists
//! `builds/`, and listings read every document. For many workers use PostgreSQL.
//!
//! # Layout
//!
//! ```text
//! DIR/
//!   format                 buildstate-files/1 — a newer number is refused (Unavailable)
//!   catalog.json           {"platforms": […], "os_versions": […], "image_types": […]}
//!   builds/<number>.json   one build, exactly the export document (SPEC §2), pretty
//!   leases/<build-id>.json the build's last lease and whether it was released
//!   index.json             {"<number>": "<build-id>"}: a cache to find builds by id
//!   .lock                  the lock file (flock)
//! ```
//!
//! `jq .current_state DIR/builds/*.json` shows where every build is. A build's file is
//! its export document, so `buildstate import` reads it as is; what the store needs
//! beyond it is either derivable from it (the history length and failure count are the
//! lengths of its lists) or kept beside it: leases are not build changes and not part of
//! the export, so they live in `leases/`, keyed by id, and survive an `import --replace`
//! (lease tokens never go back). `builds/` is the truth about which builds exist;
//! `index.json` is checked against it on every use and rebuilt when it disagrees.
//!
//! # Transactions
//!
//! The backend implements the store engine's primitives (`tx.rs`); every `Store` method
//! comes from `buildstate_store::engine`, the same code the other backends run.
//!
//! - A unit of work runs under the lock on `DIR/.lock` (`flock`, across processes; plus
//!   a mutex within one handle): exclusive for writes, shared for reads. Contention is
//!   waited out with jittered backoff for up to a minute before `StoreError::Busy`.
//! - The transaction is a write-back cache: each file it needs is read once, the
//!   primitives change the cached copies, and only when the work succeeds are the
//!   changed files written — catalog, documents, index, removals, leases, in an order
//!   that a crash at any point leaves readable or repairable (`tx.rs`, `index.rs`).
//!   Work that fails writes nothing; a commit cut short (a crash, a full disk) leaves
//!   what a crash at that point would.
//! - Every file is replaced atomically: a temporary file in the same directory,
//!   `sync_all`, rename, then the directory is flushed. Readers never see a torn file; a
//!   process killed at any instant leaves the old or the new file, and at worst a
//!   `.tmp-*.partial` file that listings ignore and the next uncontended open removes.
//! - A file edited by hand into something invalid is reported as a `StoreError`
//!   naming it, never a panic, and never silently skipped.
//!
//! The locks are advisory and do not work across NFS and similar network file systems:
//! share a directory between processes of one machine only.
//!
//! `flock` waits and fsyncs block, so every unit of work runs on tokio's blocking pool,
//! never on the async threads that drive heartbeats, output pumps and timeouts.

mod atomic;
mod catalog_file;
mod disk;
mod error;
mod handle;
mod index;
mod layout;
mod lock;
#[cfg(test)]
mod tests;
mod tx;

pub use handle::FileStore;
pub use layout::FORMAT_VERSION;
pub use tx::UnreadableBuilds;
