//! The embedded SQLite backend of buildstate: one database file, zero set-up, safe
//! under many concurrent processes.
//!
//! - [`SqliteStore::open`] creates the file if needed, sets the connection pragmas
//!   ([`sql::configure`]: WAL, `synchronous = FULL`, foreign keys) and applies the
//!   embedded, append-only migrations (`migrations/*.sql`).
//! - Every write is one `BEGIN IMMEDIATE` transaction: the write lock is taken up front,
//!   so two writers never deadlock upgrading read locks, and the transition rules of
//!   `buildstate-core` run on the row as stored, under that lock. Lock contention is
//!   waited out with jittered backoff for up to a minute before `StoreError::Busy`.
//! - The `Store` trait is async but SQLite is blocking: calls run inline on a
//!   current-thread runtime (the one-shot CLI) and under `block_in_place` on a
//!   multi-thread one (runner, server).

mod builds;
mod busy;
mod catalog;
mod documents;
mod error;
mod handle;
mod insert;
mod leases;
mod migrate;
mod numbers;
mod open;
mod records;
mod rows;
pub mod sql;
mod store;

pub use handle::SqliteStore;
pub use migrate::SCHEMA_VERSION;
