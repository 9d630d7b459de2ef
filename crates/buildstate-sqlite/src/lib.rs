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
//! - The backend is a connection for the SQL adapter shared with PostgreSQL
//!   (`buildstate_store::sql`, `conn.rs` here); every `Store` method comes from the
//!   engine. SQLite is blocking, so each unit of work runs on
//!   tokio's blocking pool, never on the async threads that drive heartbeats, output
//!   pumps and timeouts.

mod busy;
mod conn;
mod error;
mod handle;
mod migrate;
mod open;
pub mod sql;

pub use handle::SqliteStore;
pub use migrate::SCHEMA_VERSION;
