-- 0007 tokens: the API tokens of `buildstate serve` (`buildstate token create`).
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- Never the secret: its SHA-256 only (64 hex digits of a 256-bit random secret, so no
-- slow hash is needed), looked up by the token's public id. Names are unique, so a
-- person can revoke one by name. Revoked tokens are kept, as a record of who had access.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 12),
    name          TEXT NOT NULL UNIQUE,
    scopes        TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL CHECK (length(secret_sha256) = 64),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER
) STRICT;
