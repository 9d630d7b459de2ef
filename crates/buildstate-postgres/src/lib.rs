//! The PostgreSQL backend of buildstate: one database shared by many CI workers on many
//! machines.
//!
//! - [`PostgresStore::connect`] opens a connection pool (deadpool, no TLS yet) and
//!   applies the embedded, append-only migrations (`migrations/*.sql`) under an
//!   advisory lock; [`PostgresStore::connect_with_schema`] keeps every table in a schema
//!   of its own.
//! - Every write is one read-committed transaction that first locks the build's row
//!   (`SELECT … FOR NO KEY UPDATE`): writers of one build queue there, and the
//!   transition and lease rules of `buildstate-store` run on the row and lease record as
//!   stored. The row is then written with a compare-and-swap on its version. Reads run
//!   in read-only repeatable-read snapshots.
//! - Build numbers are allocated under a per-day advisory lock, with the unique
//!   constraint as the last word; deadlocks and serialization failures rerun the whole
//!   unit of work a bounded number of times before `StoreError::Busy`.
//! - Times come from the server's clock (`clock_timestamp()`), so lease expiry is judged
//!   the same way for every worker; they are stored as `timestamptz` (microseconds).
//! - The connection string's password never appears in messages: `location()` shows it
//!   as `***`.

mod builds;
mod catalog;
mod documents;
mod error;
mod handle;
mod insert;
mod leases;
mod migrate;
mod numbers;
mod records;
mod rows;
pub mod sql;
mod store;
#[cfg(test)]
mod testdb;
mod tx;
mod url;

pub use handle::PostgresStore;
pub use migrate::SCHEMA_VERSION;
