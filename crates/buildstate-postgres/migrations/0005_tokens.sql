-- 0005 tokens: the API tokens of `buildstate serve` (`buildstate token create`).
--
-- Append-only, like every migration (see 0001 for the conventions).
--
-- Never the secret: its SHA-256 only (64 hex digits of a 256-bit random secret, so no
-- slow hash is needed), looked up by the token's public id. Names are unique, so a
-- person can revoke one by name. Revoked tokens are kept, as a record of who had access.
CREATE TABLE tokens (
    id            text PRIMARY KEY CHECK (length(id) = 12),
    name          text NOT NULL UNIQUE,
    scopes        text NOT NULL,
    secret_sha256 text NOT NULL CHECK (length(secret_sha256) = 64),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz
);
