-- Device authorization requests (RFC 8628): found by the device code's
-- grant and hash (the device polls) and by the user code's hash (the
-- person types it). Kept `keep_until` (some minutes past `expires_at`) so a
-- late poll hears expired_token.
CREATE TABLE devices (
    device_grant bytea NOT NULL CHECK (octet_length(device_grant) = 16),
    device_hash  bytea NOT NULL CHECK (octet_length(device_hash) = 32),
    user_code    bytea NOT NULL UNIQUE CHECK (octet_length(user_code) = 32),
    expires_at   timestamptz NOT NULL,
    keep_until   timestamptz NOT NULL,
    record       jsonb NOT NULL,
    PRIMARY KEY (device_grant, device_hash)
);
CREATE INDEX devices_keep_until ON devices (keep_until);
