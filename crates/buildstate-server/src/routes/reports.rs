//! `GET /api/v1/reports/{name}`: every report of `buildstate report`, with the same
//! filters and the same JSON.

use axum::Json;
use axum::extract::State;
use buildstate_core::{BuildStatus, Name, StateCode};
use buildstate_store::report::{Report, ReportFilter, ReportName, ReportRequest};
use serde::Deserialize;

use super::body::{Path, Query};
use crate::AppState;
use crate::auth::CanRead;
use crate::error::ApiError;

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// As `--since` reads it: a date, an RFC 3339 time or how long ago (`90d`, `36h`); the
    /// pattern is the simple forms, all in the past.
    #[schemars(regex(
        pattern = r"^([1-9][0-9]{0,3}[dh]|(19[7-9][0-9]|20[01][0-9]|202[0-5])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$"
    ))]
    since: Option<String>,
    platform: Option<Name>,
    os: Option<Name>,
    image: Option<Name>,
    pipeline: Option<String>,
    /// Comma-separated, as on the command line.
    #[schemars(regex(
        pattern = r"^((pending|running|completed|failed|cancelled)(,(pending|running|completed|failed|cancelled))*)?$"
    ))]
    status: Option<String>,
    threshold: Option<u32>,
    from: Option<StateCode>,
    /// `cost` and `time-saved`: hourly rates per platform, `aws=1.20,azure=0.95` (a
    /// client's own `[cost]`); the server's configured rates when absent.
    #[schemars(regex(
        pattern = r"^[a-z0-9][a-z0-9._-]{0,63}=[0-9]{1,9}(\.[0-9]{1,6})?(,[a-z0-9][a-z0-9._-]{0,63}=[0-9]{1,9}(\.[0-9]{1,6})?)*$"
    ))]
    rates: Option<String>,
}

/// `aws=1.20,azure=0.95` as rates by platform.
fn rates(raw: &str) -> Result<std::collections::BTreeMap<String, f64>, ApiError> {
    // Strict, as the document's pattern: no empty list, no empty part.
    raw.split(',')
        .map(|pair| {
            let bad = || ApiError::invalid(format!("rates: `{}` is not PLATFORM=RATE", pair.escape_debug()));
            let (p, r) = pair.split_once('=').ok_or_else(bad)?;
            let rate: f64 = r.trim().parse().map_err(|_| bad())?;
            if !rate.is_finite() || rate < 0.0 {
                return Err(bad());
            }
            Ok((Name::new(p.trim()).map_err(|e| ApiError::invalid(format!("rates: {e}")))?.to_string(), rate))
        })
        .collect()
}

pub async fn report(
    _: CanRead,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Report>, ApiError> {
    let name: ReportName = name.parse().map_err(|e: String| {
        ApiError::not_found(e).with_hint("GET /api/v1/reports/overview, /matrix, /running, …")
    })?;
    let statuses = match &q.status {
        None => Vec::new(),
        // Empty: any status. Otherwise words and commas only, as the document's pattern
        // says (empty parts were skipped: schemathesis found `status=,` accepted).
        Some(list) if list.is_empty() => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| s.parse::<BuildStatus>().map_err(|e| ApiError::invalid(e.to_string())))
            .collect::<Result<_, _>>()?,
    };
    let request = ReportRequest {
        name,
        filter: ReportFilter {
            since: super::body::since(q.since.as_deref())?,
            platform: q.platform,
            os: q.os,
            image_type: q.image,
            pipeline: q.pipeline,
            statuses,
            more_failures_than: None,
        },
        threshold: q.threshold.unwrap_or(5),
        from: q.from,
        rates: match &q.rates {
            Some(raw) => rates(raw)?,
            None => state.options.rates.clone(),
        },
    };
    Ok(Json(state.store.report(&request).await?))
}
