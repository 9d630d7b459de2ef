-- 0001 init: the catalog, builds, their history, failures and artifacts.
--
-- Append-only: once released, this file never changes (its SHA-256 is recorded in
-- schema_migrations and pinned by a test). Change the schema with a new file.
--
-- Conventions:
--   * timestamps are INTEGER microseconds since the Unix epoch (UTC);
--   * statuses, kinds and classes are stored as their pinned `as_str()` words, checked;
--   * state codes are INTEGER 0..=100, checked;
--   * JSON columns hold serde_json text written by the backend;
--   * STRICT tables, so a value of the wrong type is refused instead of coerced.

CREATE TABLE platforms (
    name         TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    provider     TEXT NOT NULL,
    region       TEXT
) STRICT;

CREATE TABLE os_versions (
    name         TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    family       TEXT NOT NULL,
    major        INTEGER NOT NULL CHECK (major >= 0),
    minor        INTEGER CHECK (minor IS NULL OR minor >= 0)
) STRICT;

CREATE TABLE image_types (
    name         TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE builds (
    -- Lowercase hyphenated UUIDv7, so that prefixes of what users see match.
    id                 TEXT PRIMARY KEY NOT NULL,
    number             TEXT NOT NULL UNIQUE,
    -- RESTRICT: a catalog item cannot disappear from under a build.
    platform           TEXT NOT NULL REFERENCES platforms (name) ON DELETE RESTRICT,
    os                 TEXT NOT NULL REFERENCES os_versions (name) ON DELETE RESTRICT,
    image_type         TEXT NOT NULL REFERENCES image_types (name) ON DELETE RESTRICT,
    -- NULL: the default 21-milestone catalog (nearly every build); else the milestones.
    catalog_json       TEXT,
    state              INTEGER NOT NULL CHECK (state BETWEEN 0 AND 100),
    status             TEXT NOT NULL
                       CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    needs_intervention INTEGER NOT NULL CHECK (needs_intervention IN (0, 1)),
    attempt            INTEGER NOT NULL CHECK (attempt >= 0),
    attempt_started_at INTEGER,
    created_at         INTEGER NOT NULL,
    started_at         INTEGER,
    ended_at           INTEGER,
    updated_at         INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    ci_url             TEXT,
    metadata_json      TEXT NOT NULL DEFAULT '{}',
    -- Compare-and-swap token: every change bumps it.
    version            INTEGER NOT NULL CHECK (version >= 1),
    history_len        INTEGER NOT NULL CHECK (history_len >= 1),
    failure_count      INTEGER NOT NULL CHECK (failure_count >= 0)
) STRICT;

-- One index per `BuildFilter` field; the catalog ones also serve the foreign-key
-- checks and the "in use" count when a catalog item is removed.
CREATE INDEX builds_by_created_at ON builds (created_at);
CREATE INDEX builds_by_status ON builds (status, created_at);
CREATE INDEX builds_by_platform ON builds (platform);
CREATE INDEX builds_by_os ON builds (os);
CREATE INDEX builds_by_image_type ON builds (image_type);
CREATE INDEX builds_by_state ON builds (state);
CREATE INDEX builds_by_needs_intervention ON builds (needs_intervention);

-- Append-only history; seq runs 1, 2, 3, … per build.
CREATE TABLE events (
    build_id    TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL
                CHECK (kind IN ('created', 'started', 'completed', 'failed', 'skipped',
                                'retried', 'rewound', 'cancelled')),
    state       INTEGER NOT NULL CHECK (state BETWEEN 0 AND 100),
    attempt     INTEGER NOT NULL CHECK (attempt >= 0),
    actor       TEXT NOT NULL,
    started_at  INTEGER,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    exit_code   INTEGER,
    message     TEXT,
    log         TEXT,
    from_state  INTEGER CHECK (from_state IS NULL OR from_state BETWEEN 0 AND 100),
    forced      INTEGER NOT NULL CHECK (forced IN (0, 1)),
    PRIMARY KEY (build_id, seq)
) STRICT;

CREATE TABLE failures (
    build_id     TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL CHECK (number >= 1),
    state        INTEGER NOT NULL CHECK (state BETWEEN 0 AND 100),
    attempt      INTEGER NOT NULL CHECK (attempt >= 0),
    at           INTEGER NOT NULL,
    failure_type TEXT NOT NULL,
    class        TEXT NOT NULL CHECK (class IN ('transient', 'persistent')),
    component    TEXT,
    message      TEXT NOT NULL,
    details_json TEXT NOT NULL DEFAULT '{}',
    exit_code    INTEGER,
    resolved     INTEGER NOT NULL CHECK (resolved IN (0, 1)),
    resolution   TEXT,
    resolved_at  INTEGER,
    PRIMARY KEY (build_id, number)
) STRICT;

CREATE INDEX failures_by_at ON failures (at);
CREATE INDEX failures_by_type ON failures (failure_type);

-- Keyed by name: adding an artifact of the same name replaces it. Listed in rowid
-- order (first insertion), which an upsert keeps and an import reproduces.
CREATE TABLE artifacts (
    build_id   TEXT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('image', 'disk', 'manifest', 'report', 'other')),
    uri        TEXT NOT NULL,
    region     TEXT,
    size_bytes INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
    sha256     TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (build_id, name)
) STRICT;
