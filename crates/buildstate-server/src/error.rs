//! One JSON shape for every error: `{"error": {"code", "message", "hint"}}`, with the
//! HTTP status that says what kind. Messages say what was wrong and what to do, as the
//! CLI's do; a cause that is the server's (a database error) is logged with the
//! request, never sent: no SQL, no paths, no stack text reach a client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use buildstate_store::StoreError;
use buildstate_store::wire::WireError;
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, for programs: `not_found`, `rejected`, `conflict`, …
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// The store's error in full, for clients that act on it (the CLI through
    /// `--server`): [`WireError`], never a server fault's cause.
    pub detail: Option<Box<WireError>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), hint: None, retry_after: None, detail: None }
    }

    pub fn retry_after(self, seconds: u64) -> Self {
        ApiError { retry_after: Some(seconds), ..self }
    }

    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        ApiError { hint: Some(hint.into()), ..self }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// No token, or one that is not a usable token of this store: the same answer for
    /// every reason, so that a caller learns nothing about which tokens exist.
    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid token is needed")
            .with_hint("send `Authorization: Bearer <token>`; `buildstate token create` makes one")
    }

    pub fn forbidden(needed: buildstate_core::Scope) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs a token with the {needed} scope"),
        )
    }

    /// A failure of the server's own: logged here with its cause, answered without it.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "{what}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{what} failed on the server"))
            .with_hint("the server's log has the cause")
    }
}

/// Every error answer (the API document's `Error` schema).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Error")]
#[serde(deny_unknown_fields)]
pub(crate) struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "ErrorInner")]
#[serde(deny_unknown_fields)]
struct Inner<'a> {
    /// Stable, for programs: `not_found`, `rejected`, `conflict`, …
    code: &'a str,
    /// What was wrong and what to do, for people.
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    /// The store's error in full, for clients that act on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a WireError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                hint: self.hint.as_deref(),
                detail: self.detail.as_deref(),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme it wants.
            resp.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        // Refused before the body was read (a token, a path, a size): the connection
        // cannot be used again, and says so, so that a client does not send its next
        // request on it while it closes (which it sees as a lost answer).
        let unread = [400, 401, 403, 405, 413, 415, 429];
        if unread.contains(&self.status.as_u16()) {
            resp.headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            StoreError::BuildNotFound(_)
            | StoreError::CatalogItemNotFound { .. }
            | StoreError::FailureNotFound { .. }
            | StoreError::TokenNotFound(_)
            | StoreError::WebhookNotFound(_) => (S::NOT_FOUND, "not_found"),
            // Schema-valid, and refused only because several builds match it now: a conflict
            // with the store's state, not a malformed request (schemathesis found the 400).
            StoreError::AmbiguousRef { .. } => (S::CONFLICT, "ambiguous_reference"),
            StoreError::InvalidInput(_) => (S::UNPROCESSABLE_ENTITY, "invalid_input"),
            StoreError::Document(_) => (S::UNPROCESSABLE_ENTITY, "invalid_document"),
            StoreError::Rejected(_) => (S::UNPROCESSABLE_ENTITY, "rejected"),
            StoreError::AlreadyExists { .. } => (S::CONFLICT, "already_exists"),
            StoreError::CatalogItemInUse { .. } => (S::CONFLICT, "in_use"),
            StoreError::Conflict { .. } => (S::CONFLICT, "conflict"),
            StoreError::LeaseHeld { .. } => (S::CONFLICT, "lease_held"),
            StoreError::StaleLease { .. } => (S::CONFLICT, "stale_lease"),
            StoreError::Busy { .. } => {
                let detail = WireError::of(&e).map(Box::new);
                return ApiError { detail, ..ApiError::new(S::SERVICE_UNAVAILABLE, "busy", e.to_string()) }
                    .retry_after(1);
            }
            StoreError::Unavailable { .. } => {
                // The message names the store's location: for the log only.
                tracing::error!(cause = %e, "the store is unavailable");
                return ApiError::new(S::SERVICE_UNAVAILABLE, "unavailable", "the store cannot be reached")
                    .with_hint("try again; the server's log has the cause");
            }
            // A store that is itself a client of another server: that server's refusal
            // is this server's fault to log, not the caller's.
            StoreError::Backend { .. } | StoreError::Denied { .. } => {
                return ApiError::internal("a store operation", &e);
            }
        };
        let detail = WireError::of(&e).map(Box::new);
        ApiError { detail, ..ApiError::new(status, code, e.to_string()) }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::CONNECTION;
    use axum::response::IntoResponse;

    use super::*;

    /// CI found a client's next request lost on a connection the server was closing
    /// after a refusal that left the body unread: such refusals say `Connection: close`.
    #[test]
    fn refusals_before_the_body_is_read_close_the_connection() {
        for e in [
            ApiError::unauthorized(),
            ApiError::forbidden(buildstate_core::Scope::Write),
            ApiError::bad_request("x"),
        ] {
            let resp = e.into_response();
            assert_eq!(resp.headers().get(CONNECTION).map(|v| v.as_bytes()), Some(&b"close"[..]));
        }
        for e in [ApiError::not_found("x"), ApiError::invalid("x")] {
            assert!(e.into_response().headers().get(CONNECTION).is_none(), "the body was read: keep it open");
        }
    }
}
