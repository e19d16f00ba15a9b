-- Helpers prepended to every grant script (see lib.rs `script!`).
--
-- Key layout, all keys of one grant in one cluster slot (hash tag = grant id):
--   <prefix>{<grant>}:g         grant meta, a hash:
--                                 exp      ms epoch the grant lives until (its longest record)
--                                 rev      "1" once the grant is revoked
--                                 cur      hash (key form) of the grant's current refresh token
--                                 t:<hash> "1" for each code taken from the grant
--   <prefix>{<grant>}:c:<hash>  authorization code record (JSON)
--   <prefix>{<grant>}:a:<hash>  access token record (JSON)
--   <prefix>{<grant>}:s:<hash>  standalone access token record (JSON): the only
--                               record of a fresh client-credentials grant, one SET
--   <prefix>{<grant>}:r:<hash>  refresh token record (JSON), current or retired
--   <prefix>{<grant>}:ai        the access token hashes of a grant with refresh
--                               tokens, a sorted set by when each was issued
--   <prefix>{<grant>}:ri        its retired refresh token hashes, by when each
--                               was retired (both: the per-grant bounds)
-- Every key carries an absolute expiry (PXAT / PEXPIREAT); nothing lives forever.
-- A grant whose meta is gone is dead: no record of it is answered live, but
-- for standalone records, which need no meta and die only under a revocation
-- mark (a mark outlives them: see revoke_grant.lua).

-- The type of the value at `key`: 'none', 'string', 'hash', ...
local function key_type(key)
    return redis.call('TYPE', key)['ok']
end

-- A record's JSON text; nil when absent, false when a foreign (non-string) value sits there.
local function get_record(key)
    local t = key_type(key)
    if t == 'none' then
        return nil
    end
    if t ~= 'string' then
        return false
    end
    return redis.call('GET', key)
end

-- A record's expiry in ms since the epoch (its JSON `expires_at` is in
-- seconds); nil when the JSON does not decode to an object with a numeric
-- `expires_at`.
local function expiry_ms(raw)
    local ok, rec = pcall(cjson.decode, raw)
    if not ok or type(rec) ~= 'table' or type(rec['expires_at']) ~= 'number' then
        return nil
    end
    return rec['expires_at'] * 1000
end

-- Whether the grant meta is absent or a hash (anything else is a foreign value).
local function meta_ok(meta)
    local t = key_type(meta)
    return t == 'none' or t == 'hash'
end

-- Whether the grant is revoked.
local function revoked(meta)
    return redis.call('HGET', meta, 'rev') == '1'
end

-- The bounds per grant (`tessera::storage::MAX_ACCESS_TOKENS_PER_GRANT` and
-- `MAX_RETIRED_REFRESH_PER_GRANT`; a test in scripts.rs keeps them equal).
local MAX_ACCESS_PER_GRANT = 256
local MAX_RETIRED_PER_GRANT = 1024

-- The hash (key form) in one of the grant's record keys: `meta` is
-- `<prefix>{<grant>}:g`, `key` is `<prefix>{<grant>}:<kind>:<hash>`.
local function hash_of(meta, key)
    return string.sub(key, string.len(meta) + 2)
end

-- Adds a token's hash to one of the grant's indexes `idx` (a sorted set in
-- its slot: `<prefix>{<grant>}:ai` for access tokens, `:ri` for retired
-- refresh tokens), scored by when it joined (`score`, ms). With `cap`, it
-- first makes room: the ones that joined first go, their records (`kind`
-- 'a' or 'r') deleted, so the index and what it names stay within `cap`
-- however often a client refreshes, and the token added now is never the
-- one that goes. Expired ones are among the first (expiries only grow
-- with issue time; their records are gone already). The index lives as
-- long as the meta (at least until `exp`, ms); call after `extend`.
-- The record keys deleted are named by the index, not declared in KEYS:
-- they are in the grant's slot, as every key the script declares.
local function index_add(meta, idx, kind, hash, score, exp, cap)
    if cap then
        local over = redis.call('ZCARD', idx) - (cap - 1)
        if over > 0 then
            local base = string.sub(meta, 1, -2) .. kind .. ':'
            local popped = redis.call('ZPOPMIN', idx, over)
            for i = 1, #popped, 2 do
                redis.call('DEL', base .. popped[i])
            end
        end
    end
    redis.call('ZADD', idx, score, hash)
    redis.call('PEXPIREAT', idx, redis.call('HGET', meta, 'exp') or exp)
end

-- Extends the grant meta's life to at least `exp` (ms since the epoch, as a
-- decimal string, passed through unchanged so no float formatting is involved).
local function extend(meta, exp)
    local cur = tonumber(redis.call('HGET', meta, 'exp'))
    if cur == nil or tonumber(exp) > cur then
        redis.call('HSET', meta, 'exp', exp)
        redis.call('PEXPIREAT', meta, exp)
    end
end

