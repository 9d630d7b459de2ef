//! `GET /signin` (the form), `POST /signin` (a token in, a session cookie out) and
//! `POST /signout`. A refused token counts against the client's address in the same
//! limit as a refused bearer token ([`crate::limit`]).

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{esc, page};
use super::session::{self, ClientAddr, Viewer, check_post};
use crate::AppState;

fn form(note: &str) -> String {
    let note = if note.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="notice" role="alert">{}</p>"#, esc(note))
    };
    format!(
        r#"{note}<form method="post" action="/signin" class="signin">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
</form>
<p>A token from <code>buildstate token create</code>: a <code>read</code> token shows every view, a <code>write</code> token also retries, rewinds and cancels builds. Sessions are kept in the server's memory: after the server restarts, sign in again.</p>"#
    )
}

pub async fn show() -> Response {
    page(StatusCode::OK, "Sign in", "", &Viewer::default(), None, &form(""))
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> Response {
    let nobody = Viewer::default();
    if let Err(refused) = check_post(&headers, None, None) {
        return refused.page(&nobody);
    }
    let now = std::time::Instant::now();
    let found =
        buildstate_store::tokens::authenticate(state.store.as_ref(), f.token.trim(), buildstate_store::now())
            .await;
    // A valid token signs in even from an address that is blocked, as it is let through
    // on the API: behind a proxy every person shares one address, and one person's typos
    // must not lock the others out.
    if !matches!(found, Ok(Ok(_)))
        && let Some(wait) = addr.and_then(|a| state.failed_sign_ins.blocked(a, now))
    {
        let note =
            format!("too many refused tokens from this address; try again in {} s", wait.as_secs() + 1);
        return page(StatusCode::TOO_MANY_REQUESTS, "Sign in", "", &nobody, None, &form(&note));
    }
    let token = match found {
        Ok(Ok(t)) => t,
        Ok(Err(refusal)) => {
            tracing::info!(?refusal, client = ?addr, "a dashboard sign-in was refused");
            if let Some(a) = addr {
                state.failed_sign_ins.record(a, now);
            }
            // The same words for every reason, as the API's 401.
            return page(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "",
                &nobody,
                None,
                &form("that is not a valid token"),
            );
        }
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            return page(e.status, "Sign in", "", &nobody, None, &form(&e.message));
        }
    };
    let id = match state.sessions.open(&token) {
        Ok(id) => id,
        Err(e) => return page(e.status, "Sign in", "", &nobody, None, &form(&e.message)),
    };
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cookie(Some(&id), session::secure(&state, &headers))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

pub async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> Response {
    if let Err(refused) = check_post(&headers, Some(&viewer), f.csrf.as_deref()) {
        return refused.page(&viewer);
    }
    if let Some(id) = &viewer.session_id {
        state.sessions.close(id);
    }
    let mut resp = Redirect::to("/signin").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cookie(None, session::secure(&state, &headers))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
