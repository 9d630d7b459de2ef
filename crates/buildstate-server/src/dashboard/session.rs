//! Sign-in sessions and CSRF for the dashboard.
//!
//! Signing in with a token makes a session: a random 256-bit id in a cookie
//! (`HttpOnly; SameSite=Strict; Path=/`, and `Secure` over https), kept in this
//! process's memory with the token's id, its scopes and a CSRF token of its own.
//! Sessions do not outlive the server: after a restart people sign in again. Every
//! request re-reads the token's record, so revoking or expiry ends the session at once.
//! Every POST carries the session's CSRF token in a hidden field, and a request that a
//! browser says came from another site (`Origin`, `Sec-Fetch-Site`) is refused too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use buildstate_core::{Scope, Scopes, TokenId, TokenRecord, constant_time_eq, hex};

use crate::AppState;
use crate::error::ApiError;

/// The cookie's name.
pub const COOKIE: &str = "buildstate_session";
/// How long a session lasts at most, however active.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; beyond, the oldest goes first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
struct Session {
    token_id: TokenId,
    scopes: Scopes,
    csrf: String,
    created: Instant,
}

/// Every open session, by id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes from the system's source, as hex.
pub(crate) fn random_hex() -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::internal("drawing a session id", &"the system's random source failed"))?;
    Ok(hex(&bytes))
}

impl Sessions {
    /// A new session for `token`: its id (for the cookie).
    pub fn open(&self, token: &TokenRecord) -> Result<String, ApiError> {
        let id = random_hex()?;
        let session = Session {
            token_id: token.id.clone(),
            scopes: token.scopes.clone(),
            csrf: random_hex()?,
            created: Instant::now(),
        };
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.created.elapsed() < LIFETIME);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.created.elapsed() < LIFETIME => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

/// The `Set-Cookie` value that carries a session id (`None`: the one that clears it).
pub fn cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    }
}

/// Whether the cookie should say `Secure`: the server was told so, or a proxy in front
/// says the request came over https.
pub fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.options.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The session id the request's cookie names, if any.
fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Who is looking at a page: a signed-in session (its token's current record and its
/// CSRF token), or nobody (anonymous reads, when the server allows them).
#[derive(Clone, Debug, Default)]
pub struct Viewer {
    pub session_id: Option<String>,
    pub token: Option<TokenRecord>,
    pub csrf: Option<String>,
    /// May read the events stream (signed in, or anonymous reads are allowed): the
    /// page subscribes to live changes only then.
    pub reads: bool,
}

impl Viewer {
    /// The session's token may record changes.
    pub fn can_write(&self) -> bool {
        self.token.as_ref().is_some_and(|t| t.scopes.allow(Scope::Write))
    }

    /// How history names a change made from the dashboard.
    pub fn actor(&self) -> String {
        self.token
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), |t| format!("dashboard via token:{}", t.name))
    }
}

/// The session the request carries, checked against its token's record now: `None`
/// when there is none, it ended, or its token was revoked or expired since (which also
/// ends the session).
async fn signed_in(parts: &Parts, state: &AppState) -> Result<Option<Viewer>, ApiError> {
    let Some(id) = cookie_id(&parts.headers) else { return Ok(None) };
    let Some(session) = state.sessions.get(&id) else { return Ok(None) };
    let record = state.store.token(&session.token_id).await?;
    let now = buildstate_store::now();
    match record {
        Some(mut t) if !matches!(t.standing(now), "revoked" | "expired") => {
            // The scopes signed in with; a token's scopes never grow after.
            t.scopes = session.scopes;
            Ok(Some(Viewer { session_id: Some(id), token: Some(t), csrf: Some(session.csrf), reads: true }))
        }
        _ => {
            state.sessions.close(&id);
            Ok(None)
        }
    }
}

/// A page's viewer: signed in, or anonymous when the server allows anonymous reads;
/// anyone else is sent to the sign-in page.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match signed_in(parts, state).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) if state.options.allow_anonymous_read => Ok(Viewer { reads: true, ..Viewer::default() }),
            Ok(None) => Err(Redirect::to("/signin").into_response()),
            Err(e) => Err(super::html::message(
                e.status,
                &Viewer::default(),
                "The store cannot be read",
                &e.message,
            )),
        }
    }
}

/// Read access to an API route for a browser or a program: a bearer token (checked as
/// every API route checks it), else a dashboard session, else anonymous reads when the
/// server allows them. The events stream and attempt logs take it.
/// What granted it is kept, so that a long answer (the events stream) can check again
/// that it still holds.
#[derive(Clone, Debug)]
pub enum ReadAccess {
    Token(buildstate_core::TokenId),
    Session(String),
    Anonymous,
}

impl ReadAccess {
    fn of(caller: crate::auth::CanRead) -> ReadAccess {
        caller.0.token.map_or(ReadAccess::Anonymous, |t| ReadAccess::Token(t.id))
    }

    /// Whether it still holds: the token is neither revoked nor expired, the session is
    /// still open and so is its token.
    pub async fn still_holds(&self, state: &AppState) -> bool {
        let id = match self {
            ReadAccess::Anonymous => return true,
            ReadAccess::Token(id) => id.clone(),
            ReadAccess::Session(s) => match state.sessions.get(s) {
                Some(session) => session.token_id,
                None => return false,
            },
        };
        let now = buildstate_store::now();
        match state.store.token(&id).await {
            Ok(Some(t)) => !matches!(t.standing(now), "revoked" | "expired"),
            Ok(None) => false,
            // The store did not answer: not a reason to cut a reader off.
            Err(_) => true,
        }
    }
}

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return crate::auth::CanRead::from_request_parts(parts, state).await.map(ReadAccess::of);
        }
        if let Some(v) = signed_in(parts, state).await? {
            return Ok(v.session_id.map_or(ReadAccess::Anonymous, ReadAccess::Session));
        }
        crate::auth::CanRead::from_request_parts(parts, state).await.map(ReadAccess::of)
    }
}

/// Why a POST from the dashboard was refused before it did anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The browser says another site sent it.
    CrossSite,
    /// No CSRF token, or not this session's.
    Csrf,
}

/// A POST from a page of this server: the browser does not say it came from another
/// site, and it carries the session's CSRF token (`sent`). Checked before anything is
/// read or changed.
pub fn check_post(headers: &HeaderMap, viewer: Option<&Viewer>, sent: Option<&str>) -> Result<(), Refused> {
    let text = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    match text("sec-fetch-site") {
        // What the browser itself says, and decisive when it says it: a proxy in front
        // may rewrite `Host`, so that `Origin` would not match it though the page is ours.
        Some("same-origin" | "none") => {}
        Some(_) => return Err(Refused::CrossSite),
        // An older browser: its `Origin`, if it sends one, must be this server (as the
        // client or a proxy's `X-Forwarded-Host` names it).
        None => {
            if let Some(origin) = text(header::ORIGIN.as_str()) {
                let bare = origin.split_once("://").map_or("", |(_, rest)| rest);
                let ours = [text(header::HOST.as_str()), text("x-forwarded-host")];
                if bare.is_empty() || !ours.iter().flatten().any(|h| *h == bare) {
                    return Err(Refused::CrossSite);
                }
            }
        }
    }
    // Sign-in has no session yet: the site checks above are its protection.
    let Some(viewer) = viewer else { return Ok(()) };
    match (viewer.csrf.as_deref(), sent) {
        (Some(mine), Some(sent)) if constant_time_eq(mine.as_bytes(), sent.as_bytes()) => Ok(()),
        _ => Err(Refused::Csrf),
    }
}

impl Refused {
    pub fn page(self, viewer: &Viewer) -> Response {
        let text = match self {
            Refused::CrossSite => "this request came from another site: nothing was changed",
            Refused::Csrf => {
                "this form is out of date or was not sent by this dashboard: nothing was changed; reload the page and try again"
            }
        };
        super::html::message(StatusCode::FORBIDDEN, viewer, "Refused", text)
    }
}

/// The client's address, as the connection gave it (none for requests that came
/// through no socket, such as the tests' calls into the router).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()),
        ))
    }
}
