//! Who may do what: a bearer token (`Authorization: Bearer bst_…`), looked up by its
//! public id and compared in constant time ([`buildstate_store::tokens::authenticate`]),
//! and the scope each route needs, declared by the extractor it takes: [`CanRead`],
//! [`CanWrite`], [`CanAdmin`]. A missing, malformed, unknown, wrong, expired or revoked
//! token all get the same 401; a valid token without the scope gets 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use buildstate_core::{Scope, TokenRecord};

use crate::AppState;
use crate::error::ApiError;

/// Who is calling: the token they signed in with, or nobody (anonymous reads, when the
/// server allows them).
#[derive(Clone, Debug)]
pub struct Caller {
    pub token: Option<TokenRecord>,
    /// Who the client says acts (`Buildstate-Actor`: the CLI sends its `--actor`),
    /// recorded beside the token's name, never instead of it.
    pub on_behalf_of: Option<String>,
}

/// The header a client names its actor in.
pub const ACTOR_HEADER: &str = "buildstate-actor";

impl Caller {
    /// How the caller is named in history events (`actor`): the token's name, after the
    /// actor the client named (`alice via token:ci-aws`).
    pub fn actor(&self) -> String {
        let token =
            self.token.as_ref().map_or_else(|| "anonymous".to_owned(), |t| format!("token:{}", t.name));
        match &self.on_behalf_of {
            // The whole within the store's bound on an actor: the client's part is cut
            // (marked) to make room for the token's, never the token's.
            Some(who) => {
                let room = MAX_ACTOR.saturating_sub(token.len() + " via ".len());
                format!("{} via {token}", buildstate_core::clean_text(who, room))
            }
            None => token,
        }
    }
}

/// The `Buildstate-Actor` header, cleaned as any text from a client is; `None` when
/// absent, empty or not text.
fn on_behalf_of(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(raw) = parts.headers.get(ACTOR_HEADER).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let raw = raw.trim();
    if raw.len() > MAX_ACTOR {
        // As a local store refuses such an actor, rather than record a cut one.
        return Err(ApiError::invalid(format!("{ACTOR_HEADER} is longer than {MAX_ACTOR} bytes"))
            .with_hint("name the actor with at most 256 bytes (--actor, BUILDSTATE_ACTOR)"));
    }
    if raw.to_ascii_lowercase().contains(" via token:") {
        // The server says which token acted; an actor that says it too could name
        // another token than the one it came with.
        return Err(ApiError::invalid(format!("{ACTOR_HEADER} must not name a token (\" via token:\")"))
            .with_hint("the server records the token a change came with beside the actor"));
    }
    let who = buildstate_core::clean_text(raw, MAX_ACTOR);
    Ok((!who.is_empty()).then_some(who))
}

/// The store's bound on an actor (`created_by`, a history event's `actor`).
const MAX_ACTOR: usize = 256;

/// The client's address, as the connection gave it (absent for requests that did not
/// come through a socket, such as the tests' calls into the router).
fn client(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

async fn authorize(parts: &Parts, state: &AppState, needed: Scope) -> Result<Caller, ApiError> {
    let addr = client(parts);
    // An address that sent too many refused tokens gets 429 for what it sends next —
    // unless that is a valid token: a CI host or a NAT shared by many jobs must not
    // lose every runner's heartbeats to one job's typo. (A guess is as refused as
    // before; a 256-bit secret is not found by guessing anyway: the limit is there to
    // make floods of them cheap to refuse.)
    let blocked = addr.and_then(|a| state.failed_sign_ins.blocked(a, std::time::Instant::now()));
    let too_many = |wait: std::time::Duration| {
        ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many refused tokens from this address; try again in {} s", wait.as_secs() + 1),
        )
        .with_hint("check the token: `buildstate token list` shows which are active")
        .retry_after(wait.as_secs() + 1)
    };
    let refused = || {
        if let Some(wait) = blocked {
            return too_many(wait);
        }
        if let Some(a) = addr {
            state.failed_sign_ins.record(a, std::time::Instant::now());
        }
        ApiError::unauthorized()
    };
    let header = parts.headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap_or_default());
    let Some(header) = header else {
        if needed == Scope::Read && state.options.allow_anonymous_read {
            return Ok(Caller { token: None, on_behalf_of: on_behalf_of(parts)? });
        }
        return Err(blocked.map_or_else(ApiError::unauthorized, too_many));
    };
    // The scheme is case-insensitive (RFC 9110); anything else is no token at all.
    let presented = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => return Err(refused()),
    };
    let now = buildstate_store::now();
    match buildstate_store::tokens::authenticate(state.store.as_ref(), presented, now).await? {
        Ok(token) if token.scopes.allow(needed) => {
            Ok(Caller { token: Some(token), on_behalf_of: on_behalf_of(parts)? })
        }
        Ok(_) => Err(ApiError::forbidden(needed)),
        Err(refusal) => {
            // Which refusal is for the log; the caller gets the one answer.
            tracing::info!(?refusal, client = ?addr, "a token was refused");
            Err(refused())
        }
    }
}

macro_rules! scope_extractor {
    ($(#[$doc:meta])* $name:ident, $scope:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
                authorize(parts, state, $scope).await.map($name)
            }
        }
    };
}

scope_extractor!(
    /// The route reads: a token with any scope (or none, with `--allow-anonymous-read`).
    CanRead,
    Scope::Read
);
scope_extractor!(
    /// The route records a change: a `write` or `admin` token.
    CanWrite,
    Scope::Write
);
scope_extractor!(
    /// The route manages the server (tokens, webhooks, removals): an `admin` token.
    CanAdmin,
    Scope::Admin
);
