//! The adapter shared by the SQL backends: one implementation of the engine's
//! primitives ([`SqlTx`]) over the statements of [`text`], on any [`SqlConn`].
//!
//! A SQL backend is then its driver's part only: binding a [`SqlValue`], reading a
//! row into them, mapping its errors, beginning and ending transactions, migrations,
//! and the few statements its [`Dialect`] does not share (row locks, the server's
//! clock, the order of artifacts).

mod conn;
mod row;
pub mod text;
mod tx;
pub mod value;

pub use conn::{Dialect, Row, SqlConn, SqlWrite};
pub use row::{ValueRow, catalog_item};
pub use tx::{SqlTx, id_prefix_range};
pub use value::{SqlValue, to_i64};
