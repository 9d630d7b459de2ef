-- 0005 workers: one row per fleet worker (`buildstate worker`), so that `workers` lists
-- idle and silent workers too, not only the holders of leases.
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- A worker writes its row when it starts, on every heartbeat, when it takes or finishes
-- a build, and when it exits cleanly (exited_at). Times are the store's clock. build_id
-- names the build it was running at its last beat; it is not a foreign key: a build
-- replaced by an import, or deleted, leaves the record as it was written. Rows not seen
-- for a week are deleted when a worker starts.

CREATE TABLE workers (
    name         TEXT PRIMARY KEY NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL CHECK (pid >= 0),
    started_at   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL CHECK (heartbeat_ms >= 1),
    build_id     TEXT,
    exited_at    INTEGER
) STRICT;

CREATE INDEX workers_by_last_seen ON workers (last_seen);
