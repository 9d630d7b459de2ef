//! One request to the server and its answer: the URL of a route, the headers every
//! call carries (the token, the actor, a write's preconditions), a bounded read of the
//! body, and an error answer read back as the `StoreError` the server's store returned.

use std::time::Duration;

use buildstate_store::wire::WireError;
use buildstate_store::{Guard, StoreError, StoreResult};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take, answer included: a report over a large store takes a
/// few seconds; a server that takes this long is as good as unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read: an export of a build with a long history fits many times over.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The header a write's lease token goes in (the server's `LEASE_HEADER`).
const LEASE_HEADER: &str = "buildstate-lease-token";
/// The header the acting person or job is named in (the server's `ACTOR_HEADER`).
const ACTOR_HEADER: &str = "buildstate-actor";

/// A `buildstate serve` server as a store.
#[derive(Clone)]
pub struct HttpStore {
    /// `…/api/v1`, with no trailing slash.
    api: Url,
    /// The server's URL for messages.
    shown: String,
    /// `Bearer <token>`; `None` for a server that allows anonymous reads.
    authorization: Option<reqwest::header::HeaderValue>,
    client: reqwest::Client,
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("HttpStore").field("server", &self.shown).finish_non_exhaustive()
    }
}

impl HttpStore {
    /// A client of the server at `server` (`https://buildstate.example.com`, or with a
    /// path prefix it is served under), signing in with `token`. Nothing is sent yet;
    /// the first call finds out whether the server answers.
    pub fn new(server: &str, token: Option<&str>) -> StoreResult<HttpStore> {
        let bad = |why: &str| StoreError::InvalidInput(format!("--server: {why}"));
        let mut url = Url::parse(server.trim())
            .map_err(|e| bad(&format!("not a URL ({e}); give one like https://buildstate.example.com")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the server's URL must start with https:// (or http://)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // A URL is printed and logged; a secret in it would be too.
            return Err(bad("the URL must not carry credentials: put the token in BUILDSTATE_TOKEN"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("the URL must not have a query or fragment"));
        }
        url.path_segments_mut().map_err(|()| bad("not a server URL"))?.pop_if_empty();
        let shown = url.as_str().trim_end_matches('/').to_owned();
        url.path_segments_mut().map_err(|()| bad("not a server URL"))?.extend(["api", "v1"]);
        let authorization = match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => {
                // What people paste: the header's scheme, quotes. Said here, before a
                // refusal would count against this address's limit at the server.
                let t = t.strip_prefix("Bearer ").unwrap_or(t).trim_matches(['"', '\'']);
                if !t.starts_with("bst_") {
                    return Err(StoreError::InvalidInput(
                        "BUILDSTATE_TOKEN is not a buildstate token (they start with bst_); copy the whole line `buildstate token create` printed".into(),
                    ));
                }
                let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                    StoreError::InvalidInput(
                        "BUILDSTATE_TOKEN is not a token (it holds characters no token has); copy it again from `buildstate token create`".into(),
                    )
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        // One TLS stack in the process (crates.md): rustls on `ring`. Installing it is
        // idempotent; a provider installed first wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("buildstate/", env!("CARGO_PKG_VERSION")))
            // A redirect (http → https, a moved server) drops the token on the way, and
            // a write must not be sent twice: say where the server is instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StoreError::Unavailable {
                location: shown.clone(),
                reason: format!("cannot set up HTTPS: {e}"),
            })?;
        Ok(HttpStore { api: url, shown, authorization, client })
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// A request to the route under `/api/v1` made of `segments`, each percent-encoded
    /// as one path segment (a build reference with a `/` stays one).
    pub(crate) fn request(&self, method: Method, segments: &[&str]) -> Call<'_> {
        let mut url = self.api.clone();
        url.path_segments_mut().expect("checked in new").extend(segments);
        Call { store: self, method, url, headers: reqwest::header::HeaderMap::new(), body: None }
    }
}

/// One request being made.
pub(crate) struct Call<'s> {
    store: &'s HttpStore,
    method: Method,
    url: Url,
    headers: reqwest::header::HeaderMap,
    body: Option<Vec<u8>>,
}

impl Call<'_> {
    /// A query parameter, left out when `None`.
    pub(crate) fn query(mut self, key: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.url.query_pairs_mut().append_pair(key, &v.to_string());
        }
        self
    }

    pub(crate) fn json(mut self, body: &impl serde::Serialize) -> Self {
        // Serializing our own types cannot fail (no maps with non-string keys).
        self.body = Some(serde_json::to_vec(body).expect("a request body serializes"));
        self
    }

    /// Who acts: recorded by the server as `<actor> via token:<name>`.
    pub(crate) fn actor(mut self, actor: &str) -> Self {
        // A header carries visible ASCII; anything else is sent escaped, and the server
        // cleans it as any text from a client.
        let text: String = actor.escape_default().collect();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&text) {
            self.headers.insert(ACTOR_HEADER, v);
        }
        self
    }

    /// A write's preconditions: `If-Match` for an expected version, the lease token.
    pub(crate) fn guard(mut self, guard: Guard) -> Self {
        if let Some(v) = guard.expected_version {
            self.headers.insert(reqwest::header::IF_MATCH, v.into());
        }
        if let Some(t) = guard.lease {
            let mut v = reqwest::header::HeaderValue::from(t.get());
            v.set_sensitive(true);
            self.headers.insert(LEASE_HEADER, v);
        }
        self
    }

    /// Sends the request and reads its JSON answer.
    pub(crate) async fn send<T: DeserializeOwned>(self) -> StoreResult<T> {
        let shown = self.store.shown.clone();
        let body = self.exchange().await?;
        serde_json::from_slice(&body).map_err(|e| StoreError::Unavailable {
            location: shown.clone(),
            reason: format!(
                "it answered what this client cannot read ({e}); is --server the URL of a buildstate server of this version?"
            ),
        })
    }

    /// Sends the request; the answer's body is not needed.
    pub(crate) async fn send_empty(self) -> StoreResult<()> {
        self.exchange().await.map(drop)
    }

    /// The answer's body, raw.
    pub(crate) async fn exchange(self) -> StoreResult<Vec<u8>> {
        let store = self.store;
        let idempotent = matches!(self.method, Method::GET | Method::PUT | Method::DELETE);
        let mut req = store.client.request(self.method, self.url).headers(self.headers);
        if let Some(a) = &store.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, a.clone());
        }
        if let Some(body) = self.body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let unavailable = |e: reqwest::Error| StoreError::Unavailable {
            location: store.shown.clone(),
            // Without the URL: it is in `location` already, and a query may be long.
            reason: transport(&e.without_url()),
        };
        // A read is sent again once if its connection was closed under it (a pooled
        // connection the server was closing): it changes nothing. A write is not: the
        // server may have recorded it.
        let retry = if idempotent { req.try_clone() } else { None };
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) if !e.is_timeout() && retry.is_some() => {
                retry.expect("checked").send().await.map_err(unavailable)?
            }
            Err(e) => return Err(unavailable(e)),
        };
        let status = resp.status();
        let resp_location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| l.chars().take(200).collect::<String>());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(StoreError::Unavailable {
                    location: store.shown.clone(),
                    reason: format!("its answer is larger than {MAX_ANSWER} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(body);
        }
        if status.is_redirection() {
            let to = resp_location.unwrap_or_else(|| "elsewhere".to_owned());
            return Err(StoreError::Unavailable {
                location: store.shown.clone(),
                reason: format!("it redirects to {to}; give that URL as --server (BUILDSTATE_SERVER)"),
            });
        }
        Err(error_of(status, &body, &store.shown))
    }
}

/// A transport failure in words, with its causes (reqwest's own message is only the
/// outermost: "error sending request").
fn transport(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    detail: Option<WireError>,
}

/// An error answer as the store error it stands for: the server's store error itself
/// when the answer carries it, otherwise by the status.
fn error_of(status: StatusCode, body: &[u8], shown: &str) -> StoreError {
    let answer = serde_json::from_slice::<ErrorAnswer>(body).ok().map(|a| a.error);
    if let Some(detail) = answer.as_ref().and_then(|a| a.detail.clone()) {
        return detail.into();
    }
    let message = answer.as_ref().map_or_else(
        || format!("it answered {status} without a buildstate error; is {shown} a buildstate server?"),
        |a| a.message.clone(),
    );
    let code = answer.as_ref().map_or("", |a| a.code.as_str());
    match status {
        StatusCode::UNAUTHORIZED => StoreError::Denied {
            location: shown.to_owned(),
            reason: "no valid token (BUILDSTATE_TOKEN is missing, mistyped, expired or revoked)".into(),
        },
        StatusCode::FORBIDDEN => StoreError::Denied { location: shown.to_owned(), reason: message },
        // Too many refused tokens from this address (another job's, perhaps): not this
        // caller's token, and over in a minute.
        StatusCode::TOO_MANY_REQUESTS => {
            StoreError::Unavailable { location: shown.to_owned(), reason: message }
        }
        // A route this server does not have: a wrong --server path, or a server of
        // another version, or no buildstate server at all.
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            if matches!(code, "no_route" | "method_not_allowed") || answer.is_none() =>
        {
            StoreError::Unavailable {
                location: shown.to_owned(),
                reason: format!(
                    "{message}: is --server the URL of a buildstate server of this version (without /api/v1)?"
                ),
            }
        }
        s if s.is_client_error() => StoreError::InvalidInput(message),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            StoreError::Unavailable { location: shown.to_owned(), reason: message }
        }
        _ => StoreError::Backend { context: "the server", source: message.into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_url_is_checked_and_never_carries_a_secret() {
        let s = HttpStore::new("https://bs.example.com/", Some("bst_abc")).unwrap();
        assert_eq!(s.shown(), "https://bs.example.com");
        assert!(!format!("{s:?}").contains("bst_abc"), "Debug never shows the token");
        let prefixed = HttpStore::new("http://host:8080/buildstate", None).unwrap();
        assert_eq!(prefixed.api.as_str(), "http://host:8080/buildstate/api/v1");
        for bad in ["ftp://x", "bs.example.com", "https://u:p@x", "https://x/?a=1", ""] {
            let e = HttpStore::new(bad, None).unwrap_err();
            assert!(matches!(e, StoreError::InvalidInput(_)), "{bad}: {e}");
            assert!(!e.to_string().contains("u:p"), "{e}");
        }
        assert!(HttpStore::new("https://x", Some("bst_a\nb")).is_err());
    }

    #[test]
    fn a_path_segment_is_one_segment() {
        let s = HttpStore::new("http://h", None).unwrap();
        let call = s.request(Method::GET, &["builds", "a/b c", "history"]);
        assert_eq!(call.url.as_str(), "http://h/api/v1/builds/a%2Fb%20c/history");
    }

    #[test]
    fn error_answers_become_store_errors() {
        let shown = "http://h";
        let e =
            error_of(StatusCode::UNAUTHORIZED, br#"{"error":{"code":"unauthorized","message":"m"}}"#, shown);
        assert!(matches!(e, StoreError::Denied { .. }), "{e}");
        let e = error_of(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"not_found","message":"m","detail":{"kind":"build_not_found","reference":"x"}}}"#,
            shown,
        );
        assert!(matches!(e, StoreError::BuildNotFound(ref r) if r == "x"), "{e}");
        let e = error_of(StatusCode::NOT_FOUND, b"<html>", shown);
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        let e = error_of(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"error":{"code":"invalid_input","message":"m"}}"#,
            shown,
        );
        assert!(matches!(e, StoreError::InvalidInput(ref m) if m == "m"), "{e}");
        let e = error_of(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"error":{"code":"unavailable","message":"m"}}"#,
            shown,
        );
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        let e = error_of(StatusCode::INTERNAL_SERVER_ERROR, b"", shown);
        assert!(matches!(e, StoreError::Backend { .. }), "{e}");
    }
}
