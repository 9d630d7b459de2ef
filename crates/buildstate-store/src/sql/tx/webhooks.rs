//! Webhook endpoints and their outbox in SQL: one row per endpoint, one per delivery,
//! its attempts as a JSON array.

use buildstate_core::{BuildNumber, Delivery, WebhookId, WebhookRecord};
use jiff::Timestamp;

use super::{SqlTx, SqlValue, ValueRow, column};
use crate::sql::conn::SqlConn;
use crate::sql_rows::ColumnReader;
use crate::{StoreError, StoreResult};

const HOOK_COLUMNS: &str = "id, url, events, format, secret, created_at, consecutive_failures, disabled_at";
const DELIVERY_COLUMNS: &str = "webhook_id, event_id, event, build_id, number, created_at, payload, state, \
     next_attempt_at, attempts, attempt_count";

const READ_HOOK: &str = "read a webhook";
const READ_DELIVERY: &str = "read a webhook delivery";

fn bad(what: &'static str) -> impl Fn(String) -> StoreError {
    move |e| StoreError::Backend { context: what, source: e.into() }
}

fn hook(r: &[SqlValue]) -> StoreResult<WebhookRecord> {
    let row = ValueRow(r);
    let bad = bad(READ_HOOK);
    Ok(WebhookRecord {
        id: column(READ_HOOK, row.text(0))?.parse::<WebhookId>().map_err(|e| bad(e.to_string()))?,
        url: column(READ_HOOK, row.text(1))?,
        events: column(READ_HOOK, row.text(2))?
            .parse()
            .map_err(|e: buildstate_core::WebhookError| bad(e.to_string()))?,
        format: column(READ_HOOK, row.text(3))?
            .parse()
            .map_err(|e: buildstate_core::ParseWordError| bad(e.to_string()))?,
        secret: column(READ_HOOK, row.text(4))?,
        created_at: column(READ_HOOK, row.time(5))?,
        consecutive_failures: u32::try_from(column(READ_HOOK, row.int(6))?).unwrap_or(u32::MAX),
        disabled_at: column(READ_HOOK, row.opt_time(7))?,
    })
}

fn delivery(r: &[SqlValue]) -> StoreResult<Delivery> {
    let row = ValueRow(r);
    let bad = bad(READ_DELIVERY);
    let word = |e: buildstate_core::ParseWordError| bad(e.to_string());
    Ok(Delivery {
        webhook: column(READ_DELIVERY, row.text(0))?.parse::<WebhookId>().map_err(|e| bad(e.to_string()))?,
        event_id: column(READ_DELIVERY, row.text(1))?,
        event: column(READ_DELIVERY, row.text(2))?.parse().map_err(word)?,
        build: column(READ_DELIVERY, row.id(3))?,
        number: BuildNumber::try_from(column(READ_DELIVERY, row.text(4))?).map_err(|e| bad(e.to_string()))?,
        created_at: column(READ_DELIVERY, row.time(5))?,
        payload: column(READ_DELIVERY, row.text(6))?,
        state: column(READ_DELIVERY, row.text(7))?.parse().map_err(word)?,
        next_attempt_at: column(READ_DELIVERY, row.opt_time(8))?,
        attempts: serde_json::from_str(&column(READ_DELIVERY, row.text(9))?)
            .map_err(|e| bad(e.to_string()))?,
        attempt_count: u32::try_from(column(READ_DELIVERY, row.int(10))?).unwrap_or(u32::MAX),
    })
}

fn attempts_json(d: &Delivery) -> StoreResult<String> {
    serde_json::to_string(&d.attempts).map_err(|e| StoreError::backend("write a webhook delivery", e))
}

impl<C: SqlConn> SqlTx<C> {
    pub(super) async fn sql_webhooks(&mut self) -> StoreResult<Vec<WebhookRecord>> {
        self.all(&format!("SELECT {HOOK_COLUMNS} FROM webhooks"), &[], hook).await
    }

    pub(super) async fn sql_put_webhook(&mut self, w: &WebhookRecord) -> StoreResult<()> {
        let values: Vec<SqlValue> = vec![
            w.id.as_str().into(),
            w.url.as_str().into(),
            w.events.to_string().into(),
            w.format.as_str().into(),
            w.secret.as_str().into(),
            w.created_at.into(),
            w.consecutive_failures.into(),
            w.disabled_at.into(),
        ];
        self.write(PUT_WEBHOOK, "write a webhook", values).await
    }

    pub(super) async fn sql_delete_webhook(&mut self, id: &WebhookId) -> StoreResult<()> {
        self.write("DELETE FROM webhooks WHERE id = $1", "remove a webhook", vec![id.as_str().into()]).await
    }

    pub(super) async fn sql_insert_deliveries(&mut self, rows: &[Delivery]) -> StoreResult<()> {
        for d in rows {
            let values: Vec<SqlValue> = vec![
                d.webhook.as_str().into(),
                d.event_id.as_str().into(),
                d.event.as_str().into(),
                d.build.into(),
                d.number.as_str().into(),
                d.created_at.into(),
                d.payload.as_str().into(),
                d.state.as_str().into(),
                d.next_attempt_at.into(),
                attempts_json(d)?.into(),
                d.attempt_count.into(),
            ];
            self.write(INSERT_DELIVERY, "queue a webhook delivery", values).await?;
        }
        Ok(())
    }

    pub(super) async fn sql_delivery(
        &mut self,
        webhook: &WebhookId,
        event_id: &str,
    ) -> StoreResult<Option<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND event_id = $2"
        );
        self.first(&sql, &[webhook.as_str().into(), event_id.into()], delivery).await
    }

    pub(super) async fn sql_deliveries(
        &mut self,
        webhook: Option<&WebhookId>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match webhook {
            Some(id) => {
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
                     ORDER BY created_at DESC, event_id DESC LIMIT $2"
                );
                self.all(&sql, &[id.as_str().into(), limit.into()], delivery).await
            }
            None => {
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries ORDER BY created_at DESC, event_id DESC LIMIT $1"
                );
                self.all(&sql, &[limit.into()], delivery).await
            }
        }
    }

    pub(super) async fn sql_due_deliveries(
        &mut self,
        at: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Where writers lock rows rather than the store (PostgreSQL, read committed), a
        // second sender's claim would read the same due rows and send them too: it
        // skips the ones a claim in flight holds, and once that commits they are no
        // longer due.
        let lock = if self.dialect.row_locks { " FOR UPDATE SKIP LOCKED" } else { "" };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2{lock}"
        );
        self.all(&sql, &[at.into(), limit.into()], delivery).await
    }

    pub(super) async fn sql_put_delivery(&mut self, d: &Delivery) -> StoreResult<()> {
        let values: Vec<SqlValue> = vec![
            d.webhook.as_str().into(),
            d.event_id.as_str().into(),
            d.state.as_str().into(),
            d.next_attempt_at.into(),
            attempts_json(d)?.into(),
            d.attempt_count.into(),
        ];
        self.write(UPDATE_DELIVERY, "record a webhook delivery", values).await
    }

    pub(super) async fn sql_give_up_deliveries(&mut self, webhook: &WebhookId) -> StoreResult<()> {
        let sql = "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL \
             WHERE webhook_id = $1 AND state = 'pending'";
        self.write(sql, "give up a webhook's deliveries", vec![webhook.as_str().into()]).await
    }
}

/// An endpoint's row, written whole (`$1`..`$8` in column order).
const PUT_WEBHOOK: &str = "INSERT INTO webhooks (id, url, events, format, secret, created_at, \
     consecutive_failures, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET \
     url = excluded.url, events = excluded.events, format = excluded.format, secret = excluded.secret, \
     created_at = excluded.created_at, consecutive_failures = excluded.consecutive_failures, \
     disabled_at = excluded.disabled_at";

/// `$1`..`$11` in column order; an event already queued for the endpoint stays as it is.
const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries (webhook_id, event_id, event, build_id, number, \
     created_at, payload, state, next_attempt_at, attempts, attempt_count) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (webhook_id, event_id) DO NOTHING";

/// `$1` webhook, `$2` event id, then `$3` state, `$4` next attempt, `$5` attempts, `$6` count.
const UPDATE_DELIVERY: &str = "UPDATE webhook_deliveries SET state = $3, next_attempt_at = $4, attempts = $5, \
     attempt_count = $6 WHERE webhook_id = $1 AND event_id = $2";
