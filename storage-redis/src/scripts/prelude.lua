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
--   <prefix>{<grant>}:ai        access record keys of a grant with refresh tokens,
--                               a sorted set by expiry (the per-grant bound)
--   <prefix>{<grant>}:ri        retired refresh record keys, the same
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

-- Adds a record key to one of the grant's indexes (a sorted set beside the
-- meta, in its slot: `<prefix>{<grant>}:ai` for access tokens, `:ri` for
-- retired refresh tokens), scored by the record's expiry (ms). With `now`
-- and `cap`, then drops the expired members (their records expired with
-- them) and, past `cap`, the ones that expire first, deleting their
-- records: so a client refreshing in a loop cannot grow its grant without
-- end. The index lives as long as the meta; call after `extend`.
local function index_add(meta, name, record_key, exp, now, cap)
    local idx = string.sub(meta, 1, -2) .. name
    redis.call('ZADD', idx, exp, record_key)
    if now then
        redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
        local over = redis.call('ZCARD', idx) - cap
        if over > 0 then
            local popped = redis.call('ZPOPMIN', idx, over)
            for i = 1, #popped, 2 do
                redis.call('DEL', popped[i])
            end
        end
    end
    local until_ms = redis.call('HGET', meta, 'exp')
    if until_ms then
        redis.call('PEXPIREAT', idx, until_ms)
    end
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

