-- 0002 artifact milestones: the milestone each artifact was recorded at (the build's
-- state when it was added), and when a rewind invalidated it. (The same change as the
-- SQLite backend's `artifact milestones`.)
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- A rewind to C marks every current artifact of milestone C or later invalidated: those
-- milestones run again, so what they produced is no longer the build's. Rows recorded
-- before this migration have no milestone (NULL) and are never invalidated.

ALTER TABLE artifacts
    ADD COLUMN milestone smallint CHECK (milestone BETWEEN 0 AND 100),
    ADD COLUMN invalidated_at timestamptz;
