-- 0007 artifact cloud: the cloud an artifact lives in (`aws`, `azure`, `gcp`,
-- `openstack`, …), its own column instead of a part of the artifact's name. (The same
-- change as the SQLite backend's `artifact cloud`.)
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- Rows recorded before this migration have no cloud (NULL), as do artifacts that are
-- not in a cloud (a disk file, a manifest, a report).

ALTER TABLE artifacts ADD COLUMN cloud text;
