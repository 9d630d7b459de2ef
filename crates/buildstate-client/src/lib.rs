//! A store that is a `buildstate serve` server: the CLI's `--server URL`, so that a CI
//! worker in any cloud needs the binary and a token — no database credentials — and
//! every command (`build`, `state`, `exec`, `run`, `worker`, `report`, …) works as
//! against a local store, with the same output and exit codes.
//!
//! [`HttpStore`] implements [`Store`](buildstate_store::Store) over the HTTP API, so
//! the CLI and the runner do not know which they have, and the store's conformance
//! suite proves it keeps the contract (`tests/conformance.rs`, against a real server).
//! The server runs every rule (it is the same engine), and answers a refusal with the
//! store's own error in full (`error.detail`, [`buildstate_store::wire::WireError`]),
//! which becomes the very `StoreError` a local store would have returned.
//!
//! What differs from a local store, by design:
//! - History events record who acted as `<actor> via token:<name>`: the server records
//!   the token a change came with beside the actor the client names.
//! - Leases listed (`leases`, `break_lease`, a `LeaseHeld` refusal) carry only their
//!   generation, never a token's secret: only the runner granted a lease learns its
//!   token (`acquire_lease`), and fences its writes with it as locally.
//! - The `cost` and `time-saved` reports take the caller's rates when it passes any
//!   (the CLI's `[cost]`), the server's configured ones otherwise.
//! - A request that gets no answer within [`REQUEST_TIMEOUT`] fails as unavailable
//!   (exit 6); nothing retries a write whose answer was lost, since the server may have
//!   recorded it (read the build again: its history says).

mod http;
mod store;

pub use http::{CONNECT_TIMEOUT, HttpStore, REQUEST_TIMEOUT};
