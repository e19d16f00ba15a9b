-- Dynamic client registration (RFC 7591). A client that registered itself
-- is `dynamic`; until it first obtains a token it has an `unused_until`,
-- after which it is deleted (by the next registration, or
-- `expire_unused_clients`). The cap on dynamic clients counts these rows.
ALTER TABLE clients
    ADD COLUMN dynamic      boolean NOT NULL DEFAULT false,
    ADD COLUMN unused_until timestamptz;
CREATE INDEX clients_unused_until ON clients (unused_until) WHERE unused_until IS NOT NULL;
CREATE INDEX clients_dynamic ON clients (id) WHERE dynamic;
