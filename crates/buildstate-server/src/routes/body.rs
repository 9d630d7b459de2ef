//! A JSON body and query string whose mistakes are answered in the API's error shape
//! (axum's own rejections are plain text).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => typed(v).map(Body),
            Err(e) => Err(json_error(&e)),
        }
    }
}

/// The body as `T`. JSON has one kind of number: `5.0` is the integer 5 to JSON Schema
/// (and to every client that writes numbers as floats), but serde refuses it for an
/// integer field, so a body that fails as it came is read again with its whole floats
/// written as integers (schemathesis found the 422 for `{"state": 5.0}`). As it came
/// first, so that free-form details keep their `5.0` whenever they can.
fn typed<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    let first = match T::deserialize(&v) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let mut whole = v;
    if !integral(&mut whole) {
        return Err(ApiError::invalid(format!("the body does not fit the schema: {first}")));
    }
    T::deserialize(&whole)
        .map_err(|_| ApiError::invalid(format!("the body does not fit the schema: {first}")))
}

/// Writes every float with no fraction as an integer; whether there was one.
fn integral(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            // Only where a float holds every integer exactly (below 2^53): a larger one was
            // rounded on the way in (`18446744073709551616` read as u64::MAX was accepted
            // for a `u64`: schemathesis found it), so it is no integer the client meant.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < EXACT) else { return false };
            let as_int = if f >= 0.0 {
                serde_json::Number::from(f as u64)
            } else {
                serde_json::Number::from(f as i64)
            };
            *n = as_int;
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, i| integral(i) | any),
        Value::Object(map) => map.values_mut().fold(false, |any, i| integral(i) | any),
        _ => false,
    }
}

fn json_error(e: &JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON",
        )
        .with_hint("send `Content-Type: application/json`"),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(_) => ApiError::invalid(e.body_text()),
        _ if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is larger than this route takes ({} bytes, 64 MiB for an import)",
                crate::BODY_LIMIT
            ),
        )
        .with_hint("a failure's message is cut to 64 KiB by the CLI; send less at once"),
        _ => ApiError::bad_request(e.body_text()),
    }
}

/// One line of text as the store checks names, hosts and URIs: not blank, no control
/// characters (the length is the field's own `maxLength`).
pub const TEXT_LINE: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Text that must say something: a reason, notes (control characters are escaped, not
/// refused).
pub const NOT_BLANK: &str = r"\S";

/// Path parameters (a reference with bytes that are not UTF-8 is a 400 in the API's
/// shape, not axum's plain text).
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => {
                Err(ApiError::bad_request(format!("the path is not valid: {}", detail(&e.body_text())))
                    .with_hint("the API document (GET /api/v1/openapi.json) says what each path takes"))
            }
        }
    }
}

/// axum's words for a path or query it could not read, without its prefix, the first
/// letter lowercase (they follow ours).
fn detail(text: &str) -> String {
    let rest = ["Invalid URL: ", "Failed to deserialize query string: "]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text);
    let mut chars = rest.chars();
    chars.next().map_or_else(String::new, |c| c.to_lowercase().chain(chars).collect())
}

/// A `since` parameter as the CLI's `--since` reads it (`2026-02-12`, an RFC 3339
/// time, or how long ago: `90d`, `36h`), as a time; one in the future selects nothing
/// and is refused.
pub fn since(raw: Option<&str>) -> Result<Option<jiff::Timestamp>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let now = buildstate_store::now();
    let t = buildstate_core::parse_since(raw).map_err(|e| ApiError::invalid(format!("since: {e}")))?.at(now);
    if t > now {
        return Err(ApiError::invalid("since is in the future: no build was created after it"));
    }
    Ok(Some(t))
}

/// A query string.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(query_error(&e)),
        }
    }
}

fn query_error(e: &QueryRejection) -> ApiError {
    ApiError::bad_request(format!("the query string is not valid: {}", detail(&e.body_text())))
        .with_hint("the API document (GET /api/v1/openapi.json) says what each route takes")
}
