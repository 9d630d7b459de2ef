-- 0006 attempt stats: completed and failed attempts (and recoveries from failures)
-- summed per platform × OS × image type × milestone × duration bucket, kept in the
-- transaction of every transition by the store engine, so that the duration, cost,
-- flakiness and ETA reports read a few thousand rows instead of every attempt.
-- Existing histories are summed into it by the migration runner right after this file.
CREATE TABLE attempt_stats (
    platform   TEXT NOT NULL,
    os         TEXT NOT NULL,
    image_type TEXT NOT NULL,
    state      INTEGER NOT NULL CHECK (state BETWEEN 0 AND 100),
    kind       TEXT NOT NULL CHECK (kind IN ('completed', 'failed', 'recovered')),
    bucket     INTEGER NOT NULL CHECK (bucket >= 0),
    attempts   INTEGER NOT NULL,
    total_ms   INTEGER NOT NULL,
    retries    INTEGER NOT NULL,
    PRIMARY KEY (platform, os, image_type, state, kind, bucket)
) STRICT, WITHOUT ROWID;

-- `report running`, `attention`, `ready`: builds by status, newest first (exists);
-- `matrix`: the latest build of each cell.
CREATE INDEX builds_by_cell ON builds (platform, os, image_type, created_at);
-- `excessive-failures`, `time-saved`: the few builds that ever failed.
CREATE INDEX builds_by_failure_count ON builds (failure_count) WHERE failure_count > 0;
