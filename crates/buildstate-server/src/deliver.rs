//! The webhook sender: the loop in `buildstate serve` that empties the store's outbox.
//!
//! Transitions write deliveries into the store in their own transaction (whoever made
//! them: the CLI on the same store, a runner, this server's API). The sender claims the
//! due ones ([`Store::claim_deliveries`], held for [`SenderOptions::hold`] so that two
//! servers on one PostgreSQL store do not both send, and a sender killed mid-attempt
//! leaves them to be sent again), POSTs each signed the Standard Webhooks way, and
//! records the attempt ([`Store::record_delivery`]): the store decides the backoff, the
//! give-up and the disabling. Delivery is at least once: an endpoint that answered but
//! whose answer was not recorded (a crash in between) gets the event again, with the
//! same `webhook-id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use buildstate_core::{Delivery, DeliveryAttempt, RetryPace, WebhookRecord};
use buildstate_store::Store;
use tokio::task::JoinSet;

/// How the sender paces itself.
#[derive(Clone, Copy, Debug)]
pub struct SenderOptions {
    /// How often the outbox is looked at when it had nothing due.
    pub poll: Duration,
    /// How long a claimed delivery is held before another sender may take it.
    pub hold: Duration,
    /// How long an endpoint gets to answer.
    pub timeout: Duration,
    /// Most deliveries in flight at once. A new claim is made as soon as one ends, so
    /// an endpoint that hangs holds only the slots of its own due deliveries.
    pub in_flight: usize,
    /// Multiplies every backoff (at most 1); below 1 only for tests.
    pub backoff_scale: f64,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            poll: Duration::from_millis(500),
            hold: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            in_flight: 64,
            backoff_scale: 1.0,
        }
    }
}

/// Runs until `shutdown` resolves; an attempt in flight then is left to its hold.
pub async fn run(
    store: Arc<dyn Store>,
    options: SenderOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let client = match client(options.timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks are not sent: cannot set up an HTTP client");
            return;
        }
    };
    tokio::pin!(shutdown);
    let mut warned = false;
    let mut sends = JoinSet::new();
    loop {
        let free = options.in_flight.saturating_sub(sends.len());
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match store.claim_deliveries(free, options.hold).await {
                Ok(c) => {
                    warned = false;
                    c
                }
                Err(e) => {
                    // Said once per outage, not once per poll.
                    if !warned {
                        tracing::warn!(error = %e, "cannot read the webhook outbox; trying again");
                        warned = true;
                    }
                    Vec::new()
                }
            }
        };
        let claimed_any = !claimed.is_empty();
        for (delivery, hook) in claimed {
            let (store, client) = (Arc::clone(&store), client.clone());
            sends.spawn(async move { send_and_record(&*store, &client, &delivery, &hook, options).await });
        }
        if claimed_any && sends.len() < options.in_flight {
            // More may be due at once: claim again before sleeping.
            continue;
        }
        // Wait for a send to end (a slot frees) or the next poll, whichever is first.
        tokio::select! {
            Some(_) = sends.join_next(), if !sends.is_empty() => {}
            () = tokio::time::sleep(options.poll) => {}
            () = &mut shutdown => return,
        }
    }
}

fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    // One TLS stack in the process (crates.md): rustls on `ring`.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("buildstate-webhooks/", env!("CARGO_PKG_VERSION")))
        // An endpoint that moved says so with a failed attempt, not by sending the
        // signed body somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

async fn send_and_record(
    store: &dyn Store,
    client: &reqwest::Client,
    delivery: &Delivery,
    hook: &WebhookRecord,
    options: SenderOptions,
) {
    let attempt = send(client, delivery, hook).await;
    let outcome = attempt.status.map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}"));
    tracing::info!(
        webhook = %hook.id,
        url = %hook.shown_url(),
        event = %delivery.event_id,
        attempt = delivery.attempt_count + 1,
        outcome = %outcome,
        error = attempt.error.as_deref().unwrap_or(""),
        "webhook delivery attempt"
    );
    let pace = RetryPace { jitter: fastrand::f64(), scale: options.backoff_scale };
    match store.record_delivery(&hook.id, &delivery.event_id, &attempt, pace).await {
        Ok(Some(d)) if d.state == buildstate_core::DeliveryState::Failed => {
            let disabled = d.attempt_count >= buildstate_core::DISABLE_AFTER_FAILURES;
            if disabled {
                tracing::warn!(
                    webhook = %hook.id,
                    url = %hook.shown_url(),
                    "webhook disabled: {} failed attempts in a row; its pending deliveries are given up \
                     (fix the receiver, then `buildstate webhook remove` and `add` it again)",
                    d.attempt_count
                );
            } else {
                tracing::warn!(webhook = %hook.id, event = %d.event_id, "webhook delivery given up");
            }
        }
        Ok(_) => {}
        // The hold runs out and the delivery is sent again: at least once.
        Err(e) => tracing::warn!(webhook = %hook.id, error = %e, "cannot record a webhook attempt"),
    }
}

/// One POST of the delivery's body with the Standard Webhooks headers.
async fn send(client: &reqwest::Client, delivery: &Delivery, hook: &WebhookRecord) -> DeliveryAttempt {
    let at = buildstate_store::now();
    let started = Instant::now();
    let timestamp = at.as_second();
    let mut request = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .body(delivery.payload.clone());
    if let Some(sig) =
        buildstate_store::webhooks::sign(&hook.secret, &delivery.event_id, timestamp, &delivery.payload)
    {
        request = request.header("webhook-signature", sig);
    }
    let result = request.send().await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let error = (!answer.status().is_success()).then(|| format!("the endpoint answered {status}"));
            DeliveryAttempt { at, status: Some(status), error, duration_ms }
        }
        Err(e) => DeliveryAttempt { at, status: None, error: Some(transport(&e)), duration_ms },
    }
}

/// A transport error, short, with no URL in it (a Slack URL's path is its key).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let detail: String = cause.to_string().chars().take(200).collect();
    format!("{kind}: {detail}")
}
