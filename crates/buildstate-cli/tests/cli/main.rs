//! Integration tests: the real `buildstate` binary against a database in a temp dir.
//! One test binary (with modules) because each one re-links everything.

mod common;

mod concurrency;
mod config;
mod errors;
mod hostile;
mod leases;
mod lifecycle;
mod resume;
mod sample;
mod snapshots;
mod transfer;
