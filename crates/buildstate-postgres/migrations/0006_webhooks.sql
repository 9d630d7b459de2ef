-- 0006 webhooks: the endpoints of `buildstate webhook add` and their outbox.
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- A transition inserts one delivery per subscribed, enabled endpoint in its own
-- transaction, so a crash keeps both or neither; `buildstate serve` sends them. The
-- signing secret is kept as given (the server needs it to sign) and never shown again.
-- Deliveries name their build without a foreign key: a pruned build's events are
-- still delivered.
CREATE TABLE webhooks (
    id                   text PRIMARY KEY CHECK (length(id) = 12),
    url                  text NOT NULL,
    events               text NOT NULL,
    format               text NOT NULL,
    secret               text NOT NULL,
    created_at           timestamptz NOT NULL,
    consecutive_failures integer NOT NULL CHECK (consecutive_failures >= 0),
    disabled_at          timestamptz
);

CREATE TABLE webhook_deliveries (
    webhook_id      text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        text COLLATE "C" NOT NULL,
    event           text NOT NULL,
    build_id        uuid NOT NULL,
    number          text NOT NULL,
    created_at      timestamptz NOT NULL,
    payload         text NOT NULL,
    state           text NOT NULL,
    next_attempt_at timestamptz,
    -- JSON array of every attempt (the last 40), oldest first.
    attempts        text NOT NULL,
    attempt_count   integer NOT NULL CHECK (attempt_count >= 0),
    PRIMARY KEY (webhook_id, event_id)
);

-- The sender's one query: pending deliveries by when they are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (created_at, event_id);
