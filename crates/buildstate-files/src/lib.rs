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
//! - Every write is one transaction under the exclusive lock on `DIR/.lock` (`flock`,
//!   across processes; plus a mutex within one handle): lock → read the documents →
//!   run the shared rules (`buildstate_store::plan_transition`, the lease rules) →
//!   write → unlock. Reads take the lock shared. Contention is waited out with
//!   jittered backoff for up to a minute before `StoreError::Busy`.
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
//! The `Store` trait is async but file I/O is blocking: calls run inline on a
//! current-thread runtime (the one-shot CLI) and under `block_in_place` on a
//! multi-thread one (runner, server).

mod atomic;
mod builds;
mod catalog;
mod catalog_file;
mod documents;
mod error;
mod handle;
mod index;
mod layout;
mod leases;
mod lock;
mod numbers;
mod records;
mod snapshot;
mod store;
#[cfg(test)]
mod tests;

pub use handle::FileStore;
pub use layout::FORMAT_VERSION;
