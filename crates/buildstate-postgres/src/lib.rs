//! The PostgreSQL backend of buildstate: one database shared by many CI workers on many
//! machines.
//!
//! - [`PostgresStore::connect`] opens a connection pool (deadpool; TLS as libpq's
//!   `sslmode` and `sslrootcert` say, on rustls with the `ring` provider) and
//!   applies the embedded, append-only migrations (`migrations/*.sql`) under an
//!   advisory lock; [`PostgresStore::connect_with_schema`] keeps every table in a schema
//!   of its own.
//! - The backend is a connection for the SQL adapter shared with SQLite
//!   (`buildstate_store::sql`; `tx.rs` here) and runs each unit of work in one
//!   transaction (`transact.rs`); every `Store` method comes from the engine, which is
//!   shared with every other backend. Writes are queued and sent
//!   with the next read or `COMMIT`, pipelined: a transition is three round trips.
//! - A write is read committed, and its first read of a build locks the build's row
//!   (`SELECT … FOR NO KEY UPDATE`): writers of one build queue there, and the
//!   transition and lease rules run on the row and lease record as stored. The row is
//!   then written with a compare-and-swap on its version. Reads run in read-only
//!   repeatable-read snapshots.
//! - Build numbers are allocated under a per-day advisory lock, with the unique
//!   constraint as the last word; deadlocks, serialization failures and inserts that
//!   raced a concurrent writer rerun the whole unit of work a bounded number of times
//!   before `StoreError::Busy`.
//! - Times are stored as `timestamptz` (microseconds).
//! - The connection string's password never appears in messages: `location()` shows it
//!   as `***`.

pub mod conninfo;
mod error;
mod handle;
mod migrate;
pub mod sql;
#[cfg(test)]
mod testdb;
mod tls;
mod transact;
mod tx;
mod url;

pub use handle::PostgresStore;
pub use migrate::SCHEMA_VERSION;
