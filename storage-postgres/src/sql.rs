//! Every statement the store runs, with the schema name filled in once per
//! store. Each grant step is one statement: the atomicity comes from the
//! grant row (`grants`), which every step that changes a grant updates (and
//! so locks) in that statement, and which every lookup reads in the same
//! statement as the record.
//!
//! Parameters are bound, never formatted in; only the schema name (a
//! validated, quoted identifier) and the core's per-grant bounds (integer
//! constants) are.

use tessera::storage::{MAX_ACCESS_TOKENS_PER_GRANT, MAX_RETIRED_REFRESH_PER_GRANT};

/// The statements of one store, for its schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub put_code: String,
    pub take_code: String,
    pub issue: String,
    pub access_token: String,
    pub refresh_token: String,
    pub rotate_refresh: String,
    pub revoke_access_token: String,
    pub revoke_grant: String,
    pub put_pending: String,
    pub get_pending: String,
    pub take_pending: String,
    pub client: String,
    pub put_client: String,
    pub remove_client: String,
    pub has_clients: String,
    pub sweep_grants: String,
    pub sweep_codes: String,
    pub sweep_access_tokens: String,
    pub sweep_refresh_tokens: String,
    pub sweep_pending: String,
}

impl Sql {
    /// The statements for `schema`, which must be a valid unquoted identifier
    /// (checked by the builder).
    pub(crate) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let q = |text: &str| text.replace("{s}", &s);
        Self {
            // $1 grant, $2 hash, $3 expires_at, $4 record (JSON text).
            // Into a revoked grant nothing is stored (its code could only
            // lead to `issue` answering false), as in the memory store.
            put_code: q(
                "WITH g AS (
                    INSERT INTO {s}.grants AS g (grant_id, expires_at) VALUES ($1, $3)
                    ON CONFLICT (grant_id) DO UPDATE
                        SET expires_at = GREATEST(g.expires_at, EXCLUDED.expires_at)
                        WHERE NOT g.revoked
                    RETURNING 1
                )
                INSERT INTO {s}.codes (grant_id, hash, expires_at, taken, record)
                SELECT $1, $2, $3, false, $4::jsonb FROM g
                ON CONFLICT (grant_id, hash) DO UPDATE
                    SET expires_at = EXCLUDED.expires_at, taken = false, record = EXCLUDED.record",
            ),
            // $1 grant, $2 hash, $3 now. `c` locks the code row and, under
            // READ COMMITTED, waits for a concurrent taker and then sees its
            // committed version: so of many racers exactly one sees the code
            // untaken and takes it, and every other one sees it taken.
            // No row: unknown code, or its grant is gone or expired.
            take_code: q(
                "WITH c AS (
                    SELECT taken, expires_at > $3 AS live, record::text AS record
                    FROM {s}.codes WHERE grant_id = $1 AND hash = $2
                    FOR UPDATE
                ), g AS (
                    SELECT revoked FROM {s}.grants WHERE grant_id = $1 AND expires_at > $3
                ), t AS (
                    UPDATE {s}.codes SET taken = true, record = NULL
                    WHERE grant_id = $1 AND hash = $2
                      AND EXISTS (SELECT 1 FROM c, g WHERE NOT c.taken AND c.live AND NOT g.revoked)
                    RETURNING 1
                ), x AS (
                    -- The grant lived until the code's expiry: it (and the
                    -- taken row) must outlive the take until the exchange
                    -- issues its tokens, or the sweeper may drop them first
                    -- and a replay is unknown (RFC 6749 §4.1.2).
                    UPDATE {s}.grants SET expires_at = GREATEST(expires_at, $3 + interval '5 minutes')
                    WHERE grant_id = $1 AND EXISTS (SELECT 1 FROM t)
                    RETURNING 1
                )
                SELECT c.taken, c.record, EXISTS (SELECT 1 FROM t) AS won FROM c, g",
            ),
            // $1 grant, $2 the grant's new expiry (the tokens' latest),
            // $3 access hash, $4 access expiry, $5 access record,
            // $6 refresh hash (NULL: none), $7 refresh expiry, $8 refresh record.
            // The upsert of the grant row is the revocation check: a revoked
            // grant's row is left alone, `g` is empty, nothing is inserted.
            // A concurrent revoke_grant holds or waits for the same row lock.
            issue: q(
                "WITH g AS (
                    INSERT INTO {s}.grants AS g (grant_id, expires_at, current_refresh)
                    VALUES ($1, $2, $6)
                    ON CONFLICT (grant_id) DO UPDATE
                        SET expires_at = GREATEST(g.expires_at, EXCLUDED.expires_at),
                            current_refresh = COALESCE(EXCLUDED.current_refresh, g.current_refresh)
                        WHERE NOT g.revoked
                    RETURNING 1
                ), a AS (
                    INSERT INTO {s}.access_tokens (grant_id, hash, expires_at, record)
                    SELECT $1, $3, $4, $5::jsonb FROM g
                    ON CONFLICT (grant_id, hash) DO NOTHING
                ), r AS (
                    INSERT INTO {s}.refresh_tokens (grant_id, hash, expires_at, record)
                    SELECT $1, $6, $7, $8::jsonb FROM g WHERE $6::bytea IS NOT NULL
                    ON CONFLICT (grant_id, hash) DO NOTHING
                )
                SELECT count(*) FROM g",
            ),
            // $1 grant, $2 hash, $3 now.
            access_token: q("SELECT a.record::text
                 FROM {s}.access_tokens a JOIN {s}.grants g ON g.grant_id = a.grant_id
                 WHERE a.grant_id = $1 AND a.hash = $2 AND a.expires_at > $3
                   AND g.expires_at > $3 AND NOT g.revoked"),
            // $1 grant, $2 hash, $3 now.
            refresh_token: q("SELECT r.record::text, COALESCE(g.current_refresh = r.hash, false)
                 FROM {s}.refresh_tokens r JOIN {s}.grants g ON g.grant_id = r.grant_id
                 WHERE r.grant_id = $1 AND r.hash = $2 AND r.expires_at > $3
                   AND g.expires_at > $3 AND NOT g.revoked"),
            // $1 grant, $2 old hash, $3 now, $4 the grant's new expiry,
            // $5 new refresh hash (NULL: none), $6 access hash,
            // $7 access expiry, $8 access record, $9 refresh expiry, $10 refresh record.
            // The compare-and-swap is the UPDATE's WHERE on the grant row:
            // a racer that waited for the row lock re-checks it against the
            // winner's committed row (READ COMMITTED), finds another current
            // refresh token, and changes nothing.
            rotate_refresh: q(
                "WITH g AS (
                    UPDATE {s}.grants AS g
                    SET current_refresh = $5, expires_at = GREATEST(g.expires_at, $4)
                    WHERE g.grant_id = $1 AND NOT g.revoked AND g.expires_at > $3
                      AND g.current_refresh = $2
                      AND EXISTS (SELECT 1 FROM {s}.refresh_tokens r
                                  WHERE r.grant_id = $1 AND r.hash = $2 AND r.expires_at > $3)
                    RETURNING 1
                ), a AS (
                    INSERT INTO {s}.access_tokens (grant_id, hash, expires_at, record)
                    SELECT $1, $6, $7, $8::jsonb FROM g
                    ON CONFLICT (grant_id, hash) DO NOTHING
                ), r AS (
                    INSERT INTO {s}.refresh_tokens (grant_id, hash, expires_at, record)
                    SELECT $1, $5, $9, $10::jsonb FROM g WHERE $5::bytea IS NOT NULL
                    ON CONFLICT (grant_id, hash) DO NOTHING
                ), xa AS (
                    DELETE FROM {s}.access_tokens t
                    WHERE t.grant_id = $1 AND EXISTS (SELECT 1 FROM g)
                      AND t.hash IN (SELECT o.hash FROM {s}.access_tokens o
                                     WHERE o.grant_id = $1
                                     ORDER BY (o.record->>'issued_at')::bigint DESC, o.hash
                                     OFFSET {keep_access})
                ), xr AS (
                    DELETE FROM {s}.refresh_tokens t
                    WHERE t.grant_id = $1 AND EXISTS (SELECT 1 FROM g)
                      AND t.hash IN (SELECT o.hash FROM {s}.refresh_tokens o
                                     WHERE o.grant_id = $1 AND o.hash <> $2
                                     ORDER BY (o.record->>'issued_at')::bigint DESC, o.hash
                                     OFFSET {keep_retired})
                )
                SELECT count(*) FROM g",
            )
            // The bounds per grant (`tessera::storage`): every sub-statement
            // sees the rows as they were before it, so the new access token
            // is not among the old ones counted, nor the token retired now
            // ($2) among the retired: the newest others are kept beside it.
            // Newest by issue time (a retired refresh token was issued when
            // its predecessor retired), not by expiry: refresh tokens of one
            // family share their expiry near its end, and a tie must not
            // forget a token retired a moment ago. Expired rows are among
            // the oldest (expiries only grow with issue time).
            .replace("{keep_access}", &(MAX_ACCESS_TOKENS_PER_GRANT - 1).to_string())
            .replace("{keep_retired}", &(MAX_RETIRED_REFRESH_PER_GRANT - 1).to_string()),
            revoke_access_token: q("DELETE FROM {s}.access_tokens WHERE grant_id = $1 AND hash = $2"),
            // $1 grant, $2 expiry of a tombstone for a grant with no row.
            // The flag is what kills the tokens (every lookup checks it, and
            // issue/rotate refuse a flagged grant); the deletes only free
            // space. A taken code's row stays, so a replay is still seen.
            revoke_grant: q(
                "WITH g AS (
                    INSERT INTO {s}.grants AS g (grant_id, expires_at, revoked) VALUES ($1, $2, true)
                    ON CONFLICT (grant_id) DO UPDATE SET revoked = true, current_refresh = NULL
                    RETURNING 1
                ), a AS (
                    DELETE FROM {s}.access_tokens WHERE grant_id = $1
                ), r AS (
                    DELETE FROM {s}.refresh_tokens WHERE grant_id = $1
                ), c AS (
                    DELETE FROM {s}.codes WHERE grant_id = $1 AND NOT taken
                )
                SELECT count(*) FROM g",
            ),
            // $1 grant, $2 hash, $3 expires_at, $4 record.
            put_pending: q("INSERT INTO {s}.pending (grant_id, hash, expires_at, record)
                 VALUES ($1, $2, $3, $4::jsonb)
                 ON CONFLICT (grant_id, hash) DO UPDATE
                     SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record"),
            get_pending: q("SELECT record::text FROM {s}.pending
                 WHERE grant_id = $1 AND hash = $2 AND expires_at > $3"),
            // One DELETE: at most one caller gets the row.
            take_pending: q("DELETE FROM {s}.pending WHERE grant_id = $1 AND hash = $2
                 RETURNING record::text, expires_at > $3"),
            client: q("SELECT record::text FROM {s}.clients WHERE id = $1"),
            put_client: q("INSERT INTO {s}.clients (id, record) VALUES ($1, $2::jsonb)
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, updated_at = now()"),
            remove_client: q("DELETE FROM {s}.clients WHERE id = $1"),
            has_clients: q("SELECT EXISTS (SELECT 1 FROM {s}.clients)"),
            // $1 now, $2 batch size. SKIP LOCKED: sweepers of several
            // instances share the work, and never wait for a grant step.
            // Deleting a grant row deletes what is left of it (ON DELETE
            // CASCADE): its taken codes, and anything a revocation raced.
            sweep_grants: q("DELETE FROM {s}.grants WHERE grant_id IN (
                     SELECT grant_id FROM {s}.grants WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"),
            sweep_codes: q("DELETE FROM {s}.codes WHERE (grant_id, hash) IN (
                     SELECT grant_id, hash FROM {s}.codes WHERE NOT taken AND expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"),
            sweep_access_tokens: q("DELETE FROM {s}.access_tokens WHERE (grant_id, hash) IN (
                     SELECT grant_id, hash FROM {s}.access_tokens WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"),
            sweep_refresh_tokens: q("DELETE FROM {s}.refresh_tokens WHERE (grant_id, hash) IN (
                     SELECT grant_id, hash FROM {s}.refresh_tokens WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"),
            sweep_pending: q("DELETE FROM {s}.pending WHERE (grant_id, hash) IN (
                     SELECT grant_id, hash FROM {s}.pending WHERE expires_at <= $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_the_schema() {
        let sql = Sql::new("my_schema");
        for text in [
            &sql.put_code,
            &sql.take_code,
            &sql.issue,
            &sql.access_token,
            &sql.refresh_token,
            &sql.rotate_refresh,
            &sql.revoke_access_token,
            &sql.revoke_grant,
            &sql.put_pending,
            &sql.get_pending,
            &sql.take_pending,
            &sql.client,
            &sql.put_client,
            &sql.remove_client,
            &sql.has_clients,
            &sql.sweep_grants,
            &sql.sweep_codes,
            &sql.sweep_access_tokens,
            &sql.sweep_refresh_tokens,
            &sql.sweep_pending,
        ] {
            assert!(text.contains("\"my_schema\"."), "{text}");
            assert!(!text.contains("{s}"), "{text}");
            // One statement each.
            assert!(!text.contains(';'), "{text}");
        }
    }
}
