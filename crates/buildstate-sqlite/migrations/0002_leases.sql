-- 0002 leases: which runner runs a build, until when, under which fencing token.
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- One row per build that was ever leased. The row stays when the lease is released or
-- broken (released = 1) so that the next grant's token is one above the last: tokens
-- never go back, which is what lets a token prove that its holder still owns the build.
-- Leases are not part of the build's version or of its export document: a heartbeat is
-- not a change of the build.

CREATE TABLE leases (
    build_id    TEXT PRIMARY KEY NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL CHECK (pid >= 0),
    token       INTEGER NOT NULL CHECK (token >= 1),
    acquired_at INTEGER NOT NULL,
    renewed_at  INTEGER NOT NULL CHECK (renewed_at >= acquired_at),
    expires_at  INTEGER NOT NULL CHECK (expires_at > renewed_at),
    released    INTEGER NOT NULL CHECK (released IN (0, 1))
) STRICT;
