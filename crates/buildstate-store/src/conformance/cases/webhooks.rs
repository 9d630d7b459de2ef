use std::time::Duration;

use buildstate_core::{
    BuildId, Command, DISABLE_AFTER_FAILURES, DeliveryAttempt, DeliveryState, FailureClass, NewWebhook,
    Rejection, RetryPace, WebhookEvent, WebhookFormat,
};

use crate::conformance::{Harness, Webhooks};
use crate::{Store, StoreError};

use super::support::*;

fn hook(url: &str, events: &str, format: WebhookFormat) -> NewWebhook {
    NewWebhook { url: url.into(), events: events.parse().expect("events"), format, secret: None }
}

/// A store that refuses webhooks says so plainly and still records transitions.
async fn refused(st: &dyn Store) {
    let err = st.add_webhook(&hook("https://example.com/h", "all", WebhookFormat::Standard)).await;
    assert!(
        matches!(&err, Err(StoreError::InvalidInput(m)) if m.contains("SQLite or PostgreSQL")),
        "refused with what to use instead: {err:?}"
    );
    assert!(st.webhooks().await.expect("list").is_empty());
    let b = create(st, &seed(st).await).await;
    run(st, b.id, start(5)).await;
    assert!(st.deliveries(None, 10).await.expect("deliveries").is_empty());
}

/// Endpoints: a checked URL, a secret drawn when none is given (and kept as given when
/// one is), one endpoint per URL and format, listed oldest first, removed by id with
/// their deliveries.
pub async fn webhooks_are_added_listed_and_removed(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    if h.webhooks() == Webhooks::Refused {
        return refused(st).await;
    }
    for bad in ["ftp://x/y", "https://", "https://a b/", "https://user:pw@example.com/"] {
        let err = st.add_webhook(&hook(bad, "all", WebhookFormat::Standard)).await;
        assert!(matches!(err, Err(StoreError::InvalidInput(_))), "{bad:?}: {err:?}");
    }
    let bad_secret = NewWebhook {
        secret: Some("hunter2".into()),
        ..hook("https://e.com/", "all", WebhookFormat::Standard)
    };
    assert!(
        matches!(st.add_webhook(&bad_secret).await, Err(StoreError::InvalidInput(m)) if !m.contains("hunter2"))
    );
    assert!(st.webhooks().await.expect("list").is_empty(), "nothing refused was kept");

    let a = st
        .add_webhook(&hook("https://example.com/a", "failed,delivered", WebhookFormat::Standard))
        .await
        .expect("add a");
    assert!(a.secret.starts_with("whsec_"), "a secret is drawn and answered once");
    tick().await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let b = st
        .add_webhook(&NewWebhook {
            secret: Some(given.into()),
            ..hook("https://hooks.slack.com/services/T/B/x", "all", WebhookFormat::Slack)
        })
        .await
        .expect("add b");
    assert_eq!(b.secret, given, "a given secret is kept");
    assert_ne!(a.id, b.id);
    let again = st.add_webhook(&hook("https://example.com/a", "all", WebhookFormat::Standard)).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "one endpoint per URL and format: {again:?}"
    );

    let listed = st.webhooks().await.expect("list");
    let ids: Vec<_> = listed.iter().map(|w| &w.id).collect();
    assert_eq!(ids, [&a.id, &b.id], "oldest first");
    assert_eq!(
        (listed[0].url.as_str(), listed[0].events.to_string()),
        ("https://example.com/a", "failed,delivered".into())
    );
    assert_eq!(
        (listed[1].format, listed[1].consecutive_failures, listed[1].disabled_at),
        (WebhookFormat::Slack, 0, None)
    );

    assert!(matches!(st.remove_webhook("0123456789ab").await, Err(StoreError::WebhookNotFound(_))));
    assert!(matches!(st.remove_webhook("").await, Err(StoreError::WebhookNotFound(_))));
    let removed = st.remove_webhook(a.id.as_str()).await.expect("remove");
    assert_eq!(removed.id, a.id);
    assert_eq!(st.webhooks().await.expect("list").len(), 1);
    assert!(matches!(st.deliveries(Some(&a.id), 10).await, Err(StoreError::WebhookNotFound(_))));
}

/// A transition writes one delivery per subscribed endpoint and event, with the body
/// fixed then and a stable event id; `needs-intervention` and `delivered` are told
/// apart from the events they come with; a refused transition writes none.
pub async fn transitions_queue_webhook_deliveries_in_their_transaction(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    if h.webhooks() == Webhooks::Refused {
        return refused(st).await;
    }
    let all =
        st.add_webhook(&hook("https://example.com/all", "all", WebhookFormat::Standard)).await.expect("add");
    let few = st
        .add_webhook(&hook("https://example.com/few", "needs-intervention,delivered", WebhookFormat::Slack))
        .await
        .expect("add");
    let b = create(st, &seed(st).await).await;
    run(st, b.id, start(5)).await;
    run(st, b.id, fail(5, FailureClass::Persistent, 3)).await;
    let before = st.deliveries(None, 100).await.expect("deliveries");
    assert_rejected!(st, b.id, start(0), Rejection::Behind { .. });
    assert_eq!(
        st.deliveries(None, 100).await.expect("deliveries"),
        before,
        "a refused transition queues nothing"
    );

    let mine = |hook: &buildstate_core::WebhookId, list: &[buildstate_core::Delivery]| {
        let mut v: Vec<(WebhookEvent, String)> =
            list.iter().filter(|d| &d.webhook == hook).map(|d| (d.event, d.event_id.clone())).collect();
        v.reverse();
        v
    };
    let events: Vec<WebhookEvent> = mine(&all.id, &before).into_iter().map(|(e, _)| e).collect();
    let mut sorted = events.clone();
    sorted.sort_by_key(|e| e.as_str());
    assert_eq!(
        sorted,
        [
            WebhookEvent::Completed,
            WebhookEvent::Created,
            WebhookEvent::Failed,
            WebhookEvent::NeedsIntervention,
            WebhookEvent::Started
        ],
        "every event, and the person it needs"
    );
    assert_eq!(
        mine(&few.id, &before).into_iter().map(|(e, _)| e).collect::<Vec<_>>(),
        [WebhookEvent::NeedsIntervention],
        "only what it subscribed to"
    );
    let d = before.iter().find(|d| d.webhook == all.id && d.event == WebhookEvent::Failed).expect("failed");
    assert_eq!((d.state, d.attempt_count, d.number.clone()), (DeliveryState::Pending, 0, b.number.clone()));
    assert!(d.next_attempt_at.is_some(), "due at once");
    let body: serde_json::Value = serde_json::from_str(&d.payload).expect("a JSON body");
    assert_eq!(body["type"], "build.failed");
    assert_eq!(body["data"]["number"], b.number.as_str());
    assert_eq!(body["data"]["event_id"], d.event_id.as_str());
    let slack = before.iter().find(|d| d.webhook == few.id).expect("slack");
    let text: serde_json::Value = serde_json::from_str(&slack.payload).expect("a JSON body");
    assert!(text["text"].as_str().is_some_and(|t| t.contains(b.number.as_str())), "{text}");
    let ids: std::collections::BTreeSet<&str> =
        before.iter().filter(|d| d.webhook == all.id).map(|d| d.event_id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "one id per event");
    assert!(ids.iter().all(|id| id.contains(&b.id.to_string())), "ids name their build: {ids:?}");

    // Delivered: the last milestone completed.
    run(st, b.id, retry(true, Some("fixed"))).await;
    advance_to(st, b.id, 100).await;
    run(st, b.id, complete(100)).await;
    let after = st.deliveries(Some(&few.id), 100).await.expect("deliveries");
    assert_eq!(after.first().map(|d| d.event), Some(WebhookEvent::Delivered), "newest first: delivered");
    assert!(st.deliveries(Some(&all.id), 3).await.expect("limited").len() == 3, "at most the limit");
}

/// The sender's side: a claim takes what is due and holds it; an attempt answered
/// non-2xx is retried later, a 2xx delivers; twenty failures in a row disable the
/// endpoint, which gives up its pending deliveries and queues no more.
pub async fn webhook_deliveries_are_claimed_retried_and_given_up(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    if h.webhooks() != Webhooks::Sent {
        return;
    }
    let w = st
        .add_webhook(&hook("https://example.com/s", "started", WebhookFormat::Standard))
        .await
        .expect("add");
    let b = create(st, &seed(st).await).await;
    run(st, b.id, start(5)).await;
    let claimed = st.claim_deliveries(10, Duration::from_secs(60)).await.expect("claim");
    assert_eq!(claimed.len(), 1, "the start is due");
    let (d, endpoint) = &claimed[0];
    assert_eq!(d.event, WebhookEvent::Started);
    assert_eq!(
        (&endpoint.id, endpoint.secret.starts_with("whsec_")),
        (&w.id, true),
        "with the secret to sign with"
    );
    assert!(st.claim_deliveries(10, Duration::from_secs(60)).await.expect("claim").is_empty(), "held");

    let pace = RetryPace { jitter: 0.5, scale: 1.0 };
    let now = jiff::Timestamp::now();
    let refused = DeliveryAttempt { at: now, status: Some(503), error: Some("busy".into()), duration_ms: 3 };
    let after = st.record_delivery(&w.id, &d.event_id, &refused, pace).await.expect("record").expect("there");
    assert_eq!((after.state, after.attempt_count, after.attempts.len()), (DeliveryState::Pending, 1, 1));
    assert!(after.next_attempt_at.is_some_and(|t| t > now), "retried later");
    assert_eq!(st.webhooks().await.expect("list")[0].consecutive_failures, 1);
    let ok = DeliveryAttempt { at: now, status: Some(204), error: None, duration_ms: 2 };
    let done = st.record_delivery(&w.id, &d.event_id, &ok, pace).await.expect("record").expect("there");
    assert_eq!((done.state, done.attempt_count, done.next_attempt_at), (DeliveryState::Delivered, 2, None));
    assert_eq!(st.webhooks().await.expect("list")[0].consecutive_failures, 0, "a 2xx resets the count");
    let again = st.record_delivery(&w.id, &d.event_id, &refused, pace).await.expect("record").expect("there");
    assert_eq!(again.state, DeliveryState::Delivered, "a late attempt of a delivered one changes nothing");
    assert!(st.record_delivery(&w.id, "evt_nope", &ok, pace).await.expect("record").is_none());

    // Twenty failures in a row, on a fresh event, disable the endpoint.
    run(st, b.id, complete(5)).await;
    run(st, b.id, start(10)).await;
    let (d, _) =
        st.claim_deliveries(10, Duration::ZERO).await.expect("claim").pop().expect("the second start");
    for _ in 0..DISABLE_AFTER_FAILURES {
        st.record_delivery(&w.id, &d.event_id, &refused, RetryPace { jitter: 0.0, scale: 0.0 })
            .await
            .expect("record");
    }
    let hooks = st.webhooks().await.expect("list");
    assert!(hooks[0].disabled_at.is_some(), "disabled after {DISABLE_AFTER_FAILURES} failures");
    let given_up = st.deliveries(Some(&w.id), 10).await.expect("deliveries");
    assert_eq!(given_up[0].state, DeliveryState::Failed, "its pending deliveries are given up");
    run(st, b.id, complete(10)).await;
    run(st, b.id, start(15)).await;
    assert_eq!(
        st.deliveries(Some(&w.id), 10).await.expect("deliveries").len(),
        2,
        "a disabled endpoint queues nothing"
    );
    assert!(st.claim_deliveries(10, Duration::ZERO).await.expect("claim").is_empty());
}

/// Senders on several handles (servers sharing one store) that claim at once never
/// take the same delivery: each due one goes to exactly one of them.
pub async fn concurrent_claims_never_take_one_delivery_twice(h: &impl Harness) {
    if h.webhooks() != Webhooks::Sent {
        return;
    }
    let s = h.open().await;
    let st = s.as_ref();
    st.add_webhook(&hook("https://example.com/c", "created", WebhookFormat::Standard)).await.expect("add");
    let new = seed(st).await;
    let handles = handles(h, 8).await;
    // Rounds of many claimers on many due deliveries, to give a race every chance.
    for round in 0..3 {
        for _ in 0..40 {
            create(st, &new).await;
        }
        let mut claims = tokio::task::JoinSet::new();
        for handle in &handles {
            let handle = std::sync::Arc::clone(handle);
            claims.spawn(async move {
                handle.claim_deliveries(40, Duration::from_secs(60)).await.expect("claim")
            });
        }
        let mut taken = Vec::new();
        while let Some(claimed) = claims.join_next().await {
            taken.extend(claimed.expect("a claim task").into_iter().map(|(d, _)| d.event_id));
        }
        let distinct: std::collections::BTreeSet<&String> = taken.iter().collect();
        assert_eq!(distinct.len(), taken.len(), "round {round}: a delivery was claimed twice");
        assert_eq!(taken.len(), 40, "round {round}: every due delivery went to one claim");
    }
}

async fn handles(h: &impl Harness, n: usize) -> Vec<std::sync::Arc<dyn Store>> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(h.open().await);
    }
    v
}
