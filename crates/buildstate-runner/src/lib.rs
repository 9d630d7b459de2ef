//! The runner of buildstate: pipeline files, the executor that owns child processes,
//! and the dispatcher that owns build state and talks to the store.

pub mod dispatch;
pub mod executor;
pub mod integrate;
pub mod packer;
pub mod pipeline;
