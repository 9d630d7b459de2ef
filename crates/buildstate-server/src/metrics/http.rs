//! HTTP requests by method, route and status: a histogram of how long the server took to
//! answer, kept in the process (it starts empty with the process, as Prometheus expects
//! of a counter) and recorded by a middleware around every route.
//!
//! Labels stay bounded whatever clients send: the route is the *template* the request
//! matched (`/api/v1/builds/{reference}`, never the path asked for), and every path that
//! matched no route is [`UNMATCHED`]; a method outside the standard ones is `other`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::text::{Exposition, Kind};
use crate::AppState;

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the buckets, in seconds: a cached read takes a millisecond, a report
/// over a large store some seconds.
pub const BOUNDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Method, route template, status.
type Key = (&'static str, String, u16);

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// Per bucket of [`BOUNDS`], then the overflow: not cumulative (the text is).
    counts: [u64; BOUNDS.len() + 1],
    sum: f64,
}

/// Every request answered since the server started.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    series: Mutex<BTreeMap<Key, Histogram>>,
}

impl HttpMetrics {
    pub fn observe(&self, method: &Method, route: Option<&str>, status: u16, took: Duration) {
        let key = (method_label(method), route.unwrap_or(UNMATCHED).to_owned(), status);
        let seconds = took.as_secs_f64();
        let bucket = BOUNDS.iter().position(|&b| seconds <= b).unwrap_or(BOUNDS.len());
        // A poisoned lock only means another request panicked while adding one: the
        // counts are still whole numbers, so go on with them.
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let h = series.entry(key).or_default();
        h.counts[bucket] += 1;
        h.sum += seconds;
    }

    /// Writes the family. Series appear with their first request: the status is part of
    /// the label set, and no status of a route is known before it answers.
    pub fn write(&self, e: &mut Exposition) {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut f = e.family(
            "buildstate_http_request_duration_seconds",
            Kind::Histogram,
            "Time to answer HTTP requests, by method, route template and status, since the server started.",
        );
        let les: Vec<String> = BOUNDS.iter().map(|b| super::text::number(*b)).collect();
        for ((method, route, status), h) in &series {
            let status = status.to_string();
            let labels = [("method", *method), ("route", route.as_str()), ("status", status.as_str())];
            let mut seen = 0;
            for (i, le) in les.iter().enumerate() {
                seen += h.counts[i];
                f.suffixed("_bucket", &with(&labels, ("le", le)), seen as f64);
            }
            let count: u64 = h.counts.iter().sum();
            f.suffixed("_bucket", &with(&labels, ("le", "+Inf")), count as f64);
            f.suffixed("_sum", &labels, h.sum);
            f.suffixed("_count", &labels, count as f64);
        }
    }
}

fn with<'a>(labels: &[(&'a str, &'a str); 3], le: (&'a str, &'a str)) -> [(&'a str, &'a str); 4] {
    [labels[0], labels[1], labels[2], le]
}

fn method_label(m: &Method) -> &'static str {
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS]
        .iter()
        .find(|k| *k == m)
        .map_or("other", |k| k.as_str())
}

/// The middleware: times the request from the moment the router has it to the moment
/// its response (headers; the body may still stream) is ready.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    state.http.observe(&method, route.as_deref(), resp.status().as_u16(), started.elapsed());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_labels_bounded() {
        let m = HttpMetrics::default();
        let ms = Duration::from_millis;
        m.observe(&Method::GET, Some("/api/v1/builds/{reference}"), 200, ms(3));
        m.observe(&Method::GET, Some("/api/v1/builds/{reference}"), 200, ms(30));
        m.observe(&Method::GET, Some("/api/v1/builds/{reference}"), 200, ms(60_000));
        m.observe(&Method::from_bytes(b"BREW").expect("a method"), None, 404, ms(1));
        let mut e = Exposition::default();
        m.write(&mut e);
        let text = e.finish();
        let labels = r#"method="GET",route="/api/v1/builds/{reference}",status="200""#;
        for (le, n) in [("0.0025", 0), ("0.005", 1), ("0.025", 1), ("0.05", 2), ("10", 2), ("+Inf", 3)] {
            let line =
                format!("buildstate_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains(&format!("buildstate_http_request_duration_seconds_count{{{labels}}} 3\n")));
        assert!(text.contains(&format!("buildstate_http_request_duration_seconds_sum{{{labels}}} 60.033\n")));
        assert!(text.contains(r#"{method="other",route="unmatched",status="404",le="0.001"} 1"#), "{text}");
    }
}
