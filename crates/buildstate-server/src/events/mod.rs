//! Live changes of builds, for the dashboard and any client of `GET /api/v1/events`
//! (server-sent events).
//!
//! One [`Events`] hub per server: a single background watcher ([`source`]) notices
//! builds that changed and sends each change once to a `tokio::sync::broadcast`, which
//! every open stream reads. The watcher runs only while someone listens. Where the
//! changes come from is [`source`]'s business alone (today it polls the store; a store
//! change feed can replace it without touching the streams or the pages).

mod source;
mod stream;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use buildstate_core::{BuildId, BuildNumber, BuildStatus, StateCode};
use buildstate_store::Store;
use serde::Serialize;
use tokio::sync::broadcast;

pub use stream::{EventsQuery, MAX_STREAM_SECONDS, events};

/// One build's change, as the stream sends it (`data:` of an event named `build`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BuildChange {
    pub id: BuildId,
    pub number: BuildNumber,
    pub state: StateCode,
    pub status: BuildStatus,
    pub needs_intervention: bool,
    pub version: u64,
}

impl BuildChange {
    pub fn of(b: &buildstate_core::Build) -> BuildChange {
        BuildChange {
            id: b.id,
            number: b.number.clone(),
            state: b.state,
            status: b.status,
            needs_intervention: b.needs_intervention,
            version: b.version,
        }
    }
}

/// A change with its place in this server's sequence (the SSE `id`, what a reconnecting
/// client sends back as `Last-Event-ID`).
#[derive(Clone, Debug)]
pub struct Numbered {
    pub seq: u64,
    pub change: BuildChange,
}

/// Changes a reconnecting client can be sent again; older ones are gone (it reloads).
const REPLAY: usize = 256;

/// The hub: the broadcast every stream reads, the last changes for `Last-Event-ID`,
/// and whether the watcher runs.
#[derive(Debug)]
pub struct Events {
    store: Arc<dyn Store>,
    tx: broadcast::Sender<Numbered>,
    recent: Mutex<(u64, VecDeque<Numbered>)>,
    watching: AtomicBool,
    /// The last sequence number sent when the watcher last started: changes made while
    /// nobody watched have none, so a client that saw only up to here must reload.
    watched_from: std::sync::atomic::AtomicU64,
    /// Set once the server stops: every open stream ends, so that a stop does not wait
    /// out its grace period for streams that would never finish by themselves.
    closed: tokio::sync::watch::Sender<bool>,
}

impl Events {
    pub fn new(store: Arc<dyn Store>) -> Arc<Events> {
        let (tx, _) = broadcast::channel(1024);
        let closed = tokio::sync::watch::Sender::new(false);
        Arc::new(Events {
            store,
            tx,
            recent: Mutex::default(),
            watching: AtomicBool::new(false),
            watched_from: std::sync::atomic::AtomicU64::new(0),
            closed,
        })
    }

    /// Ends every open stream and any opened later (the server is stopping).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`Events::close`] was called.
    fn closing(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.closed.subscribe();
        async move {
            // An error: the hub is gone, which also ends the stream.
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// A receiver of every change from now on, the changes after `last_seen` that are
    /// still remembered, and whether that replay cannot be the whole of what the client
    /// missed (it must reload): its id is from before this server started, older than
    /// what is remembered, or from before the watcher last started (nobody watched in
    /// between, so changes then have no id). Starts the watcher if none runs.
    pub fn subscribe(
        self: &Arc<Self>,
        last_seen: Option<u64>,
    ) -> (broadcast::Receiver<Numbered>, Vec<Numbered>, bool) {
        // Subscribed before the replay is read, so that nothing falls between them (a
        // change in both is sent twice, which a page takes as one more refresh).
        let rx = self.tx.subscribe();
        let watched_before = self.watching.load(Ordering::SeqCst);
        self.ensure_watching();
        let Some(seen) = last_seen else { return (rx, Vec::new(), false) };
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = recent.1.front().map_or(recent.0 + 1, |n| n.seq);
        let replay: Vec<Numbered> = if seen <= recent.0 {
            recent.1.iter().filter(|n| n.seq > seen).cloned().collect()
        } else {
            Vec::new()
        };
        let gap = seen > recent.0
            || seen.saturating_add(1) < oldest
            || !watched_before
            || seen < self.watched_from.load(Ordering::SeqCst);
        (rx, replay, gap)
    }

    fn ensure_watching(self: &Arc<Self>) {
        if !self.watching.swap(true, Ordering::SeqCst) {
            let last = self.recent.lock().unwrap_or_else(|p| p.into_inner()).0;
            self.watched_from.store(last, Ordering::SeqCst);
            let hub = Arc::clone(self);
            tokio::spawn(async move { source::watch(hub).await });
        }
    }

    /// Sends one change to every stream.
    fn publish(&self, change: BuildChange) {
        let numbered = {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.0 += 1;
            let n = Numbered { seq: recent.0, change };
            if recent.1.len() == REPLAY {
                recent.1.pop_front();
            }
            recent.1.push_back(n.clone());
            n
        };
        // No receiver: nobody listens right now, which is no error.
        let _ = self.tx.send(numbered);
    }

    /// Whether the watcher should go on: someone listens. When nobody does it stops,
    /// and says so — unless a stream subscribed meanwhile, which it then serves.
    fn keep_watching(&self) -> bool {
        if self.tx.receiver_count() > 0 {
            return true;
        }
        self.watching.store(false, Ordering::SeqCst);
        // A subscriber that came between the count and the store saw `watching` still
        // true and started nothing: take it back, unless another watcher did.
        self.tx.receiver_count() > 0 && !self.watching.swap(true, Ordering::SeqCst)
    }
}
