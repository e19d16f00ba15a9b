-- Resource indicators (RFC 8707): every code, access token and refresh
-- token names the resource it is for (`audience` in the record's JSON,
-- absent for tokens without an audience). The store itself needs no
-- column for it (records are the core's JSON, so an older row simply has
-- no audience), but operators do: "which live tokens are for the MCP
-- server?", "revoke every grant of a retired resource server" are plain
-- SQL over these columns. Generated from the record, they can never
-- disagree with it; the store's own statements never write them.

ALTER TABLE codes
    ADD COLUMN audience text GENERATED ALWAYS AS (record ->> 'audience') STORED;
ALTER TABLE access_tokens
    ADD COLUMN audience text GENERATED ALWAYS AS (record ->> 'audience') STORED;
ALTER TABLE refresh_tokens
    ADD COLUMN audience text GENERATED ALWAYS AS (record ->> 'audience') STORED;

-- Looking tokens up by resource (partial: tokens without one are left out).
CREATE INDEX access_tokens_audience ON access_tokens (audience) WHERE audience IS NOT NULL;
CREATE INDEX refresh_tokens_audience ON refresh_tokens (audience) WHERE audience IS NOT NULL;
