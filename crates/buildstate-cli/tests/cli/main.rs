//! Integration tests: the real `buildstate` binary against a database in a temp dir.
//! One test binary (with modules) because each one re-links everything.

mod common;
mod concourse;

mod ansible;
mod artifacts;
mod concurrency;
mod config;
mod dashboard;
mod demo;
mod errors;
mod exec;
mod exec_lease;
mod exit_codes;
mod first_use;
mod fleet;
mod generate;
mod hostile;
mod hostile_files;
mod leases;
mod lifecycle;
mod location;
mod new_project;
mod packer;
mod prune;
mod qemu_example;
mod regressions;
mod reports;
mod resume;
mod runner;
mod runner_faults;
mod sample;
mod serve;
mod server_mode;
mod settings;
mod snapshots;
mod sync;
mod tokens;
mod transfer;
mod wait;
mod webhooks;
