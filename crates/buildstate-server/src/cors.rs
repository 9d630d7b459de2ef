//! Cross-origin requests: off unless origins are configured (`serve --cors-origin URL`).
//! A browser page from a configured origin may call the API with a token in the
//! `Authorization` header; every other origin gets no CORS header at all, so the
//! browser keeps the answer from it. There is no `*`: an origin is named or refused, and
//! nothing rides on cookies, so no credentials are ever allowed cross-origin.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Checks a configured origin: `scheme://host[:port]`, nothing after it, never `*`.
pub fn parse_origin(raw: &str) -> Result<String, String> {
    let o = raw.trim().trim_end_matches('/');
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
    match rest {
        _ if o == "*" => Err("`*` is not allowed: name each origin (https://dash.example.com)".into()),
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '*', ' ']) => {
            Ok(o.to_ascii_lowercase())
        }
        _ => Err(format!(
            "`{}` is not an origin: give scheme://host[:port], such as https://dash.example.com",
            o.escape_debug()
        )),
    }
}

/// Adds the CORS headers for a configured origin, and answers its preflights.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let allowed = origin.filter(|o| state.options.cors_origins.iter().any(|c| c == o));
    let Some(origin) = allowed else { return next.run(req).await };
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(req).await };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if preflight {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, if-match"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_named_never_wildcards() {
        assert_eq!(parse_origin("https://Dash.example.com/").as_deref(), Ok("https://dash.example.com"));
        assert_eq!(parse_origin("http://localhost:3000").as_deref(), Ok("http://localhost:3000"));
        for bad in ["*", "https://*.example.com", "dash.example.com", "https://", "https://a/b", "ftp://x"] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
