//! `GET /metrics`: the Prometheus text exposition format ([`text`]).
//!
//! Two sources: figures read from the store at scrape time ([`store`]: builds by status,
//! attempts by outcome, milestone durations, builds running per milestone, leases held
//! and expired, failures by type and class, the last delivery of each catalog cell), and
//! the server's own HTTP requests ([`http`]), counted in the process by a middleware.
//!
//! Every label is bounded: platform, OS, image type, state code, status, outcome,
//! failure type and class, HTTP method, route template and status. No build id or
//! number, lease holder, message or concrete path is ever a label.

pub mod http;
pub mod store;
pub mod text;

pub use http::HttpMetrics;
