//! The store contract of buildstate.
//!
//! Every read and every transition goes through [`Store`]. The transition rules live in
//! `buildstate-core`; a backend's only job is to run them inside its own transaction on
//! the build as stored and to write the outcome atomically, so that concurrent writers
//! (processes, threads, machines) can never interleave. [`conformance`] is the one suite
//! every backend must pass.

mod check;
pub mod conformance;
pub mod engine;
mod error;
mod filter;
mod guard;
mod lease;
mod naming;
mod plan;
mod prune;
pub mod report;
pub mod sql;
pub mod sql_rows;
mod store;
pub mod tokens;
pub mod webhooks;
pub mod wire;

pub use check::{
    check_artifact, check_catalog_item, check_lease_request, check_new_build, check_worker_beat,
};
pub use engine::{
    Backend, FORGET_WORKERS_AFTER, Mode, Tx, TxFuture, Work, WorkerList, finish_on_this_thread, run_blocking,
};
pub use error::{StoreError, StoreResult};
pub use filter::{BuildFilter, FailureFilter, ImportMode};
pub use guard::Guard;
pub use lease::{LeaseRecord, check_fence, plan_acquire, plan_release, plan_renew, plan_take_over};
pub use naming::{implied_catalog_items, os_parts, prefix_upper_bound, sequence_of};
pub use plan::{build_number_stem, check_guard, now, plan_transition, resolve_candidates};
pub use prune::{Kept, PruneRule};
pub use store::Store;
