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
//! - The backend implements the store engine's primitives (`tx.rs`); every `Store`
//!   method comes from the engine. SQLite is blocking, so each unit of work runs on
//!   tokio's blocking pool, never on the async threads that drive heartbeats, output
//!   pumps and timeouts.

mod busy;
mod catalog;
mod error;
mod handle;
mod insert;
mod migrate;
mod open;
mod rows;
pub mod sql;
mod tx;

pub use handle::SqliteStore;
pub use migrate::SCHEMA_VERSION;
