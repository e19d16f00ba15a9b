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

-- Extends the grant meta's life to at least `exp` (ms since the epoch, as a
-- decimal string, passed through unchanged so no float formatting is involved).
local function extend(meta, exp)
    local cur = tonumber(redis.call('HGET', meta, 'exp'))
    if cur == nil or tonumber(exp) > cur then
        redis.call('HSET', meta, 'exp', exp)
        redis.call('PEXPIREAT', meta, exp)
    end
end

