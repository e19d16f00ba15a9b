-- The replay cache (RFC 9449 §11.1 DPoP proofs, RFC 7523 §3 assertions):
-- one row per one-time value, by namespace and the SHA-256 the core
-- computed (never the value). A row counts until `expires_at`; the sweeper
-- deletes expired rows in batches.
CREATE TABLE replay_cache (
    namespace  text NOT NULL,
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, hash)
);
CREATE INDEX replay_cache_expires_at ON replay_cache (expires_at);
