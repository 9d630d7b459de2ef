//! `GET /metrics`: the store's figures and the server's requests, in the Prometheus
//! text format ([`crate::metrics`]). A read like any other: a token with the `read`
//! scope, or none under `--allow-anonymous-read`.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::AppState;
use crate::auth::CanRead;
use crate::error::ApiError;
use crate::metrics::text::{self, Exposition};

pub async fn metrics(_: CanRead, State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let figures = crate::metrics::store::gather(state.store.as_ref()).await?;
    let mut e = Exposition::default();
    figures.write(&mut e);
    state.http.write(&mut e);
    Ok(([(CONTENT_TYPE, text::CONTENT_TYPE)], e.finish()))
}
