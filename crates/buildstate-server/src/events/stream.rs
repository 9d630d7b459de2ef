//! `GET /api/v1/events`: the changes as server-sent events, one `build` event per
//! changed build (`id` is its place in this server's sequence, `data` a
//! [`BuildChange`](super::BuildChange)). The stream is bounded: it ends after `timeout`
//! seconds (at most [`MAX_STREAM_SECONDS`]), and a browser's `EventSource` reconnects by
//! itself, sending `Last-Event-ID` so that what it missed is sent again while the server
//! still remembers it. A client that fell behind gets a `reload` event: it should read
//! everything again.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::{Events, Numbered};
use crate::AppState;
use crate::dashboard::session::ReadAccess;
use crate::error::ApiError;
use crate::routes::body::Query;

/// The longest a stream stays open: long enough that reconnecting costs nothing, short
/// enough that no connection is held for ever by a client that went away quietly.
pub const MAX_STREAM_SECONDS: u32 = 300;

/// How often a stream checks that its reader may still read.
const RECHECK: Duration = Duration::from_secs(5);

/// How often an idle stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Seconds until the stream ends (0: at once, after the replay); 300 if absent.
    #[schemars(range(min = 0, max = 300))]
    timeout: Option<u32>,
}

pub async fn events(
    access: ReadAccess,
    State(state): State<AppState>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let seconds = q.timeout.unwrap_or(MAX_STREAM_SECONDS);
    if seconds > MAX_STREAM_SECONDS {
        return Err(ApiError::invalid(format!(
            "timeout must be 0 to {MAX_STREAM_SECONDS} seconds, not {seconds}"
        )));
    }
    // A malformed Last-Event-ID is a client's stale state, not an error: replay nothing.
    let last_seen =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let lasts = Duration::from_secs(seconds.into());
    Ok(Sse::new(changes(&state.events, last_seen, lasts, access, state.clone()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn event(n: &Numbered) -> Event {
    Event::default()
        .event("build")
        .id(n.seq.to_string())
        .json_data(&n.change)
        .unwrap_or_else(|_| Event::default().event("reload").data("{}"))
}

/// The replay, then every change until `lasts` has passed, or until what let the client
/// read no longer does (a revoked token, a closed session): checked every [`RECHECK`],
/// so a revoked reader's stream ends within that.
fn changes(
    hub: &Arc<Events>,
    last_seen: Option<u64>,
    lasts: Duration,
    access: ReadAccess,
    state: AppState,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let (rx, replay, gap) = hub.subscribe(last_seen);
    let deadline = Instant::now() + lasts;
    // How soon a browser reconnects once the stream ends.
    let hello = Event::default().retry(Duration::from_millis(500)).comment("buildstate events");
    // What the client missed may be more than the replay: it reads everything again.
    let reload = gap.then(|| Event::default().event("reload").data("{}"));
    let head = stream::iter(
        std::iter::once(hello).chain(reload).chain(replay.iter().map(event)).map(Ok).collect::<Vec<_>>(),
    );
    let closing = Box::pin(hub.closing());
    let live = stream::unfold((rx, closing), move |(mut rx, mut closing)| {
        let (access, state) = (access.clone(), state.clone());
        async move {
            let next = loop {
                let recheck = (Instant::now() + RECHECK).min(deadline);
                tokio::select! {
                    next = tokio::time::timeout_at(recheck, rx.recv()) => match next {
                        Ok(next) => break next,
                        Err(_) if Instant::now() >= deadline => return None,
                        Err(_) => {}
                    },
                    () = &mut closing => return None,
                }
                if !access.still_holds(&state).await {
                    return None;
                }
            };
            let ev = match next {
                Ok(n) => event(&n),
                Err(RecvError::Lagged(_)) => Event::default().event("reload").data("{}"),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(ev), (rx, closing)))
        }
    });
    head.chain(live)
}
