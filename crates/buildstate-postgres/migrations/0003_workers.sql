-- 0003 workers: one row per fleet worker (`buildstate worker`), so that `workers` lists
-- idle and silent workers too, not only the holders of leases. (The same table as the
-- SQLite backend's `workers`.)
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- A worker writes its row when it starts, on every heartbeat, when it takes or finishes
-- a build, and when it exits cleanly (exited_at). Times are the server's clock, like
-- lease expiry. build_id names the build it was running at its last beat; it is not a
-- foreign key: a build replaced by an import, or deleted, leaves the record as it was
-- written. Rows not seen for a week are deleted when a worker starts.

CREATE TABLE workers (
    name         text COLLATE "C" PRIMARY KEY,
    host         text NOT NULL,
    pid          bigint NOT NULL CHECK (pid BETWEEN 0 AND 4294967295),
    started_at   timestamptz NOT NULL,
    last_seen    timestamptz NOT NULL,
    heartbeat_ms bigint NOT NULL CHECK (heartbeat_ms >= 1),
    build_id     uuid,
    exited_at    timestamptz
);

CREATE INDEX workers_by_last_seen ON workers (last_seen);
