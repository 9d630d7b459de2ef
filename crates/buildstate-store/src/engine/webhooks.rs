//! Webhook endpoints and their outbox: the rows a transition writes in its own
//! transaction, and the claim and record steps the server's sender runs on them.

use std::time::Duration;

use buildstate_core::{
    Build, Delivery, DeliveryAttempt, DeliveryState, HistoryEvent, NewWebhook, WebhookId, WebhookRecord,
    notices, payload, shown_url,
};

use super::Tx;
use crate::{StoreError, StoreResult};

/// Stores a new endpoint (`id` and `secret` drawn by the caller, outside the unit of
/// work, which may run more than once). One endpoint per URL and format.
pub(crate) async fn add(
    tx: &mut dyn Tx,
    new: &NewWebhook,
    id: &WebhookId,
    secret: &str,
) -> StoreResult<WebhookRecord> {
    new.check().map_err(|e| StoreError::InvalidInput(e.to_string()))?;
    let all = tx.webhooks().await?;
    if all.iter().any(|w| w.url == new.url && w.format == new.format) {
        return Err(StoreError::AlreadyExists { what: "webhook for", key: shown_url(&new.url) });
    }
    if all.iter().any(|w| &w.id == id) {
        return Err(StoreError::AlreadyExists { what: "webhook id", key: id.to_string() });
    }
    let secret = new.secret.clone().unwrap_or_else(|| secret.to_owned());
    let record = WebhookRecord::new(id.clone(), new.clone(), secret, tx.now().await?);
    tx.put_webhook(&record).await?;
    Ok(record)
}

pub(crate) async fn list(tx: &mut dyn Tx) -> StoreResult<Vec<WebhookRecord>> {
    let mut all = tx.webhooks().await?;
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(all)
}

pub(crate) async fn remove(tx: &mut dyn Tx, id: &str) -> StoreResult<WebhookRecord> {
    let shown = crate::tokens::shown(id);
    let found = tx
        .webhooks()
        .await?
        .into_iter()
        .find(|w| w.id.as_str() == id.trim())
        .ok_or(StoreError::WebhookNotFound(shown))?;
    tx.delete_webhook(&found.id).await?;
    Ok(found)
}

pub(crate) async fn deliveries(
    tx: &mut dyn Tx,
    webhook: Option<&WebhookId>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    if let Some(id) = webhook
        && !tx.webhooks().await?.iter().any(|w| &w.id == id)
    {
        return Err(StoreError::WebhookNotFound(id.to_string()));
    }
    tx.deliveries(webhook, limit).await
}

/// Writes the outbox rows of a transition (or a create: `before` is `None`): one per
/// event and enabled endpoint subscribed to it, in the transaction that records the
/// events, so that a crash keeps both or neither.
pub(crate) async fn enqueue(
    tx: &mut dyn Tx,
    before: Option<&Build>,
    after: &Build,
    events: &[HistoryEvent],
) -> StoreResult<()> {
    let hooks = tx.webhooks().await?;
    if hooks.iter().all(|w| w.disabled_at.is_some()) {
        return Ok(());
    }
    let mut rows = Vec::new();
    for notice in notices(before, after, events) {
        let Some(history) = events.iter().find(|e| e.seq == notice.seq) else { continue };
        for hook in hooks.iter().filter(|w| w.disabled_at.is_none() && w.events.contains(notice.event)) {
            rows.push(Delivery {
                webhook: hook.id.clone(),
                event_id: notice.event_id.clone(),
                event: notice.event,
                build: after.id,
                number: after.number.clone(),
                created_at: notice.at,
                payload: payload(hook.format, &notice, after, history),
                state: DeliveryState::Pending,
                next_attempt_at: Some(notice.at),
                attempts: Vec::new(),
                attempt_count: 0,
            });
        }
    }
    tx.insert_deliveries(&rows).await
}

/// Takes up to `limit` due deliveries of enabled endpoints and holds them for `hold`.
pub(crate) async fn claim(
    tx: &mut dyn Tx,
    limit: usize,
    hold: Duration,
) -> StoreResult<Vec<(Delivery, WebhookRecord)>> {
    let now = tx.now().await?;
    let due = tx.due_deliveries(now, limit).await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let hooks = tx.webhooks().await?;
    let mut claimed = Vec::new();
    for mut d in due {
        let Some(hook) = hooks.iter().find(|w| w.id == d.webhook && w.disabled_at.is_none()) else {
            continue;
        };
        d.next_attempt_at = Some(now + hold);
        tx.put_delivery(&d).await?;
        claimed.push((d, hook.clone()));
    }
    Ok(claimed)
}

/// Records one attempt on the delivery and its endpoint; disabling the endpoint gives
/// up its pending deliveries.
pub(crate) async fn record(
    tx: &mut dyn Tx,
    webhook: &WebhookId,
    event_id: &str,
    attempt: &DeliveryAttempt,
    pace: buildstate_core::RetryPace,
) -> StoreResult<Option<Delivery>> {
    let Some(mut delivery) = tx.delivery(webhook, event_id).await? else { return Ok(None) };
    let Some(mut hook) = tx.webhooks().await?.into_iter().find(|w| &w.id == webhook) else { return Ok(None) };
    if delivery.state != DeliveryState::Pending {
        // Another sender recorded it first (a hold that ran out mid-attempt).
        return Ok(Some(delivery));
    }
    delivery.after_attempt(attempt.clone(), pace);
    tx.put_delivery(&delivery).await?;
    let was_enabled = hook.disabled_at.is_none();
    hook.after_attempt(&delivery, attempt.at);
    tx.put_webhook(&hook).await?;
    if was_enabled && hook.disabled_at.is_some() {
        tx.give_up_deliveries(&hook.id).await?;
        delivery = tx.delivery(webhook, event_id).await?.unwrap_or(delivery);
    }
    Ok(Some(delivery))
}
