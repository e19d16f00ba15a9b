-- Tessera's store, version 1. Run by `PostgresStore` on start (sqlx
-- migrations, embedded in the crate) with `search_path` set to the store's
-- schema (default `tessera`), so every name below lands in that schema.
--
-- Every secret is kept only as its SHA-256 (`hash`, 32 bytes); every record
-- row is keyed by (grant_id, hash), the grant id being the 16 random bytes
-- the secret's text carries. Records' bodies are the core's serde JSON
-- (`record`), so a field added to a record in the core needs no migration;
-- what the SQL itself compares (expiries, the current refresh token, the
-- revocation and taken flags) has its own column.

-- Registered clients (RFC 6749 §2): the only rows without an expiry.
CREATE TABLE clients (
    id         text PRIMARY KEY,
    record     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per grant: what makes its steps atomic. Every step on a grant
-- (issue, rotate, revoke) updates or locks this row, so concurrent steps on
-- one grant are serialised by its row lock, and a lookup answers a token
-- live only while its grant row says the grant is live and not revoked.
CREATE TABLE grants (
    grant_id        bytea PRIMARY KEY CHECK (octet_length(grant_id) = 16),
    -- The latest expiry of anything ever stored in the grant: until then a
    -- revocation and a taken code must be remembered.
    expires_at      timestamptz NOT NULL,
    revoked         boolean NOT NULL DEFAULT false,
    -- The hash of the grant's current refresh token; any other refresh
    -- token of the grant still stored is a retired one (RFC 9700 §4.14.2).
    current_refresh bytea CHECK (octet_length(current_refresh) = 32)
);
CREATE INDEX grants_expires_at ON grants (expires_at);

-- Authorization codes (RFC 6749 §4.1.2). A taken code keeps its row (with
-- `record` cleared) as long as its grant lives, so a replay is recognised.
CREATE TABLE codes (
    grant_id   bytea NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    expires_at timestamptz NOT NULL,
    taken      boolean NOT NULL DEFAULT false,
    record     jsonb,
    PRIMARY KEY (grant_id, hash),
    CHECK (taken OR record IS NOT NULL)
);
-- The sweeper's lookup: untaken codes past their expiry.
CREATE INDEX codes_expires_at ON codes (expires_at) WHERE NOT taken;

CREATE TABLE access_tokens (
    grant_id   bytea NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    expires_at timestamptz NOT NULL,
    record     jsonb NOT NULL,
    PRIMARY KEY (grant_id, hash)
);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- Current and retired refresh tokens alike (`grants.current_refresh` tells
-- which is current); a retired one is kept until its own expiry.
CREATE TABLE refresh_tokens (
    grant_id   bytea NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    expires_at timestamptz NOT NULL,
    record     jsonb NOT NULL,
    PRIMARY KEY (grant_id, hash)
);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- Pending authorization requests: the handles the login and consent pages
-- carry. Not tied to a grant row (a handle's grant id is its own).
CREATE TABLE pending (
    grant_id   bytea NOT NULL CHECK (octet_length(grant_id) = 16),
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    expires_at timestamptz NOT NULL,
    record     jsonb NOT NULL,
    PRIMARY KEY (grant_id, hash)
);
CREATE INDEX pending_expires_at ON pending (expires_at);
