-- 0008 webhooks: the endpoints of `buildstate webhook add` and their outbox.
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- A transition inserts one delivery per subscribed, enabled endpoint in its own
-- transaction, so a crash keeps both or neither; `buildstate serve` sends them. The
-- signing secret is kept as given (the server needs it to sign) and never shown again.
-- Deliveries name their build without a foreign key: a pruned build's events are
-- still delivered.
CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 12),
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,
    format               TEXT NOT NULL,
    secret               TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 0),
    disabled_at          INTEGER
) STRICT;

CREATE TABLE webhook_deliveries (
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event           TEXT NOT NULL,
    build_id        TEXT NOT NULL,
    number          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    next_attempt_at INTEGER,
    -- JSON array of every attempt (the last 40), oldest first.
    attempts        TEXT NOT NULL,
    attempt_count   INTEGER NOT NULL CHECK (attempt_count >= 0),
    PRIMARY KEY (webhook_id, event_id)
) STRICT;

-- The sender's one query: pending deliveries by when they are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (created_at, event_id);
