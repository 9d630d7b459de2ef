-- 0001 init: the catalog, builds, their history, failures, artifacts and leases.
-- (The same logical schema as the SQLite backend's 0001 + 0002.)
--
-- Append-only: once released, this file never changes (its SHA-256 is recorded in
-- schema_migrations and pinned by a test). Change the schema with a new file.
--
-- Conventions:
--   * timestamps are timestamptz: whole microseconds like every time buildstate
--     records, readable in psql, and comparable with the server's clock, which judges
--     lease expiry;
--   * build ids are uuid; their canonical lowercase text is what users see and prefix;
--   * names and build numbers are text COLLATE "C": byte order, so that prefix ranges
--     (number >= $1 AND number < $2) and listings sort the same on every server and
--     the same as the SQLite backend, whatever the database's default collation;
--   * statuses, kinds and classes are stored as their pinned `as_str()` words, checked;
--   * state codes are smallint 0..=100, checked; unsigned 32-bit counters are bigint
--     checked to their range;
--   * metadata is jsonb (its values are cleaned text, and fleet queries look into it);
--     failure details and custom catalogs are json, kept verbatim: arbitrary JSON may
--     hold \u0000, which jsonb refuses.

CREATE TABLE platforms (
    name         text COLLATE "C" PRIMARY KEY,
    display_name text NOT NULL,
    provider     text NOT NULL,
    region       text
);

CREATE TABLE os_versions (
    name         text COLLATE "C" PRIMARY KEY,
    display_name text NOT NULL,
    family       text NOT NULL,
    major        bigint NOT NULL CHECK (major BETWEEN 0 AND 4294967295),
    minor        bigint CHECK (minor BETWEEN 0 AND 4294967295)
);

CREATE TABLE image_types (
    name         text COLLATE "C" PRIMARY KEY,
    display_name text NOT NULL,
    description  text NOT NULL DEFAULT ''
);

CREATE TABLE builds (
    id                 uuid PRIMARY KEY,
    number             text COLLATE "C" NOT NULL,
    -- RESTRICT: a catalog item cannot disappear from under a build.
    platform           text COLLATE "C" NOT NULL REFERENCES platforms (name) ON DELETE RESTRICT,
    os                 text COLLATE "C" NOT NULL REFERENCES os_versions (name) ON DELETE RESTRICT,
    image_type         text COLLATE "C" NOT NULL REFERENCES image_types (name) ON DELETE RESTRICT,
    -- NULL: the default 21-milestone catalog (nearly every build); else the milestones.
    catalog            json,
    state              smallint NOT NULL CHECK (state BETWEEN 0 AND 100),
    status             text NOT NULL
                       CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    needs_intervention boolean NOT NULL,
    attempt            bigint NOT NULL CHECK (attempt BETWEEN 0 AND 4294967295),
    attempt_started_at timestamptz,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    ended_at           timestamptz,
    updated_at         timestamptz NOT NULL,
    created_by         text NOT NULL,
    ci_url             text,
    metadata           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    -- Compare-and-swap token: every change bumps it.
    version            bigint NOT NULL CHECK (version >= 1),
    history_len        bigint NOT NULL CHECK (history_len >= 1),
    failure_count      bigint NOT NULL CHECK (failure_count BETWEEN 0 AND 4294967295),
    -- Named: the backend tells a taken number from other unique violations by it.
    CONSTRAINT builds_number_key UNIQUE (number)
);

-- One index per `BuildFilter` field; the catalog ones also serve the foreign-key
-- checks and the "in use" count when a catalog item is removed. (created_at, id) is
-- the listing order, newest first.
CREATE INDEX builds_by_created_at ON builds (created_at, id);
CREATE INDEX builds_by_status ON builds (status, created_at);
CREATE INDEX builds_by_platform ON builds (platform);
CREATE INDEX builds_by_os ON builds (os);
CREATE INDEX builds_by_image_type ON builds (image_type);
CREATE INDEX builds_by_state ON builds (state);
CREATE INDEX builds_by_needs_intervention ON builds (needs_intervention);

-- Append-only history; seq runs 1, 2, 3, … per build.
CREATE TABLE events (
    build_id    uuid NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    seq         bigint NOT NULL CHECK (seq >= 1),
    at          timestamptz NOT NULL,
    kind        text NOT NULL
                CHECK (kind IN ('created', 'started', 'completed', 'failed', 'skipped',
                                'retried', 'rewound', 'cancelled')),
    state       smallint NOT NULL CHECK (state BETWEEN 0 AND 100),
    attempt     bigint NOT NULL CHECK (attempt BETWEEN 0 AND 4294967295),
    actor       text NOT NULL,
    started_at  timestamptz,
    duration_ms bigint CHECK (duration_ms >= 0),
    exit_code   integer,
    message     text,
    log         text,
    from_state  smallint CHECK (from_state BETWEEN 0 AND 100),
    forced      boolean NOT NULL,
    PRIMARY KEY (build_id, seq)
);

CREATE TABLE failures (
    build_id     uuid NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    number       bigint NOT NULL CHECK (number BETWEEN 1 AND 4294967295),
    state        smallint NOT NULL CHECK (state BETWEEN 0 AND 100),
    attempt      bigint NOT NULL CHECK (attempt BETWEEN 0 AND 4294967295),
    at           timestamptz NOT NULL,
    failure_type text COLLATE "C" NOT NULL,
    class        text NOT NULL CHECK (class IN ('transient', 'persistent')),
    component    text,
    message      text NOT NULL,
    details      json NOT NULL DEFAULT '{}',
    exit_code    integer,
    resolved     boolean NOT NULL,
    resolution   text,
    resolved_at  timestamptz,
    PRIMARY KEY (build_id, number)
);

CREATE INDEX failures_by_at ON failures (at);
CREATE INDEX failures_by_type ON failures (failure_type);

-- Keyed by name: adding an artifact of the same name replaces it. Listed in `position`
-- order (first insertion), which an upsert keeps and an import reproduces.
CREATE TABLE artifacts (
    build_id   uuid NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name       text COLLATE "C" NOT NULL,
    position   bigint GENERATED ALWAYS AS IDENTITY,
    kind       text NOT NULL CHECK (kind IN ('image', 'disk', 'manifest', 'report', 'other')),
    uri        text NOT NULL,
    region     text,
    size_bytes bigint CHECK (size_bytes >= 0),
    sha256     text CHECK (length(sha256) = 64),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (build_id, name)
);

CREATE INDEX artifacts_in_order ON artifacts (build_id, position);

-- Leases: which runner runs a build, until when, under which fencing token.
--
-- One row per build that was ever leased. The row stays when the lease is released or
-- broken (released = true) so that the next grant's token is one above the last:
-- tokens never go back, which is what lets a token prove that its holder still owns
-- the build. Leases are not part of the build's version or of its export document: a
-- heartbeat is not a change of the build.
CREATE TABLE leases (
    build_id    uuid PRIMARY KEY REFERENCES builds (id) ON DELETE CASCADE,
    owner       text NOT NULL,
    host        text NOT NULL,
    pid         bigint NOT NULL CHECK (pid BETWEEN 0 AND 4294967295),
    token       bigint NOT NULL CHECK (token >= 1),
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL CHECK (renewed_at >= acquired_at),
    expires_at  timestamptz NOT NULL CHECK (expires_at > renewed_at),
    released    boolean NOT NULL
);

-- Held leases by expiry: what a fleet worker scans for builds to take over.
CREATE INDEX leases_held_by_expiry ON leases (expires_at) WHERE NOT released;
