//! The build page's buttons: `POST /builds/{ref}/retry`, `…/rewind` and `…/cancel`.
//! Each is refused (403, nothing changed) unless the form carries the session's CSRF
//! token, the browser does not say another site sent it, and the session's token has
//! the `write` scope (checked against its record now); then it is the same store
//! command the API and the CLI send, under the same rules.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use buildstate_core::{Command, StateCode};
use buildstate_store::Guard;
use serde::Deserialize;

use super::html::{self, seg};
use super::session::{Viewer, check_post};
use crate::AppState;
use crate::routes::body::Path;

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    reason: Option<String>,
    to: Option<String>,
    /// A person decided to retry a build that needs one (`retry --force`), recorded.
    force: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Retry,
    Rewind,
    Cancel,
}

async fn act(
    state: AppState,
    viewer: Viewer,
    reference: String,
    headers: HeaderMap,
    f: ActionForm,
    action: Action,
) -> Response {
    if let Err(refused) = check_post(&headers, Some(&viewer), f.csrf.as_deref()) {
        return refused.page(&viewer);
    }
    if !viewer.can_write() {
        return html::message(
            StatusCode::FORBIDDEN,
            &viewer,
            "Refused",
            "this needs a session signed in with a token with the write scope: nothing was changed",
        );
    }
    let actor = viewer.actor();
    let reason = f.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let command = match action {
        Action::Retry => Command::Retry { actor, reason, force: f.force.is_some() },
        Action::Cancel => {
            Command::Cancel { actor, reason: reason.unwrap_or_else(|| "cancelled from the dashboard".into()) }
        }
        Action::Rewind => {
            let Some(to) =
                f.to.as_deref().and_then(|t| t.parse::<i64>().ok()).and_then(|t| StateCode::new(t).ok())
            else {
                return html::message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &viewer,
                    "Not rewound",
                    "choose the milestone to rewind to",
                );
            };
            Command::Rewind {
                to,
                actor,
                reason: reason.unwrap_or_else(|| "rewound from the dashboard".into()),
            }
        }
    };
    let done = async {
        let b = state.store.find_build(&reference).await?;
        state.store.apply(b.id, &command, Guard::none()).await?;
        Ok::<_, buildstate_store::StoreError>(b)
    };
    match done.await {
        Ok(b) => Redirect::to(&format!("/builds/{}", seg(b.number.as_str()))).into_response(),
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            html::message(e.status, &viewer, "Not done", &e.message)
        }
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            viewer: Viewer,
            Path(reference): Path<String>,
            headers: HeaderMap,
            Form(f): Form<ActionForm>,
        ) -> Response {
            act(state, viewer, reference, headers, f, $action).await
        }
    };
}

action_handler!(retry, Action::Retry);
action_handler!(rewind, Action::Rewind);
action_handler!(cancel, Action::Cancel);
