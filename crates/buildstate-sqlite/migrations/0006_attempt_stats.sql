-- 0006 attempt stats: completed and failed attempts (and recoveries from failures)
-- summed per platform × OS × image type × milestone × duration bucket (about 10 %
-- wide for completed attempts, none for the others), kept in the
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



-- Completed attempts over all builds per milestone and 1 % duration bucket: what
-- `report durations` reads when it is not filtered (attempt_stats counts per cell in
-- 10 % buckets, which would be nearly a row per attempt at 1 %).
CREATE TABLE duration_histogram (
    state    INTEGER NOT NULL CHECK (state BETWEEN 0 AND 100),
    bucket   INTEGER NOT NULL CHECK (bucket >= 0),
    attempts INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    PRIMARY KEY (state, bucket)
) STRICT, WITHOUT ROWID;

-- What resuming saved each resumed build (`report time-saved`), kept like attempt_stats,
-- with the build's number and cell so that the report reads this table alone.
CREATE TABLE resume_savings (
    build_id TEXT PRIMARY KEY NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    number     TEXT NOT NULL,
    platform   TEXT NOT NULL,
    os         TEXT NOT NULL,
    image_type TEXT NOT NULL,
    resumes  INTEGER NOT NULL,
    saved_ms INTEGER NOT NULL
) STRICT;

-- `matrix`: the latest build of each cell.
CREATE INDEX builds_by_cell ON builds (platform, os, image_type, created_at);
-- `excessive-failures`, `time-saved`: the few builds that ever failed.
CREATE INDEX builds_by_failure_count ON builds (failure_count) WHERE failure_count > 0;

-- Report counts read indexes, not the table: per platform, OS, image type and milestone
-- by status and need of a person (these replace the single-column indexes, which also
-- served the catalog's foreign-key checks and every list filter: their prefixes still
-- do); the overview by status; the month buckets of `success-rate` by creation time.
DROP INDEX builds_by_platform;
CREATE INDEX builds_by_platform ON builds (platform, status, needs_intervention);
DROP INDEX builds_by_os;
CREATE INDEX builds_by_os ON builds (os, status, needs_intervention);
DROP INDEX builds_by_image_type;
CREATE INDEX builds_by_image_type ON builds (image_type, status, needs_intervention);
DROP INDEX builds_by_state;
CREATE INDEX builds_by_state ON builds (state, status, needs_intervention);
CREATE INDEX builds_by_status_and_need ON builds (status, needs_intervention);
DROP INDEX builds_by_created_at;
CREATE INDEX builds_by_created_at ON builds (created_at, id, status, needs_intervention);
-- `report failures`: failure records grouped by milestone and type, and the latest of
-- each group, from the index alone.
CREATE INDEX failures_by_group ON failures (state, failure_type, at, build_id);
-- Milestone names of reports: the few catalogs builds have of their own.
CREATE INDEX builds_with_own_catalog ON builds (id) WHERE catalog IS NOT NULL;
-- `report flaky`: transient failure messages counted per milestone from the index.
CREATE INDEX failures_by_class ON failures (class, state, message);
