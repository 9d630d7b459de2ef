//! The cases, grouped by the part of the contract they check. Each takes a harness
//! and panics (with a message naming the rule) when the backend breaks the contract.

// First: `support` defines the assertion macros the cases use.
#[macro_use]
mod support;
mod builds;
mod catalog;
mod concurrency;
mod documents;
mod leases;
mod lifecycle;
mod prune;
mod records;
mod rejections;
mod reports;
mod text;
mod tokens;
mod webhooks;
mod workers;

pub use builds::*;
pub use catalog::*;
pub use concurrency::*;
pub use documents::*;
pub use leases::*;
pub use lifecycle::*;
pub use prune::*;
pub use records::*;
pub use rejections::*;
pub use reports::*;
pub use text::*;
pub use tokens::*;
pub use webhooks::*;
pub use workers::*;
