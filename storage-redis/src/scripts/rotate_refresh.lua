-- rotate_refresh: compare-and-swap of the grant's current refresh token.
-- Succeeds only if ARGV[1] is the current refresh token, its record exists and
-- is live at `now`, and the grant is not revoked; then the old record stays
-- (retired, until its own expiry), the new refresh token becomes current and
-- the new access token is stored; past the per-grant bounds the access
-- tokens issued first and the refresh tokens retired first are deleted.
-- KEYS[1] grant meta   KEYS[2] old refresh record   KEYS[3] new access record
-- KEYS[4] the grant's access index   KEYS[5] its retired refresh index
-- KEYS[6] new refresh record (only with a new refresh token)
-- ARGV[1] old refresh hash (key form)   ARGV[2] now, ms since the epoch
-- ARGV[3] access JSON   ARGV[4] access expiry ms
-- ARGV[5] new refresh JSON   ARGV[6] new refresh expiry ms   ARGV[7] new refresh hash (key form)
-- Returns {'rotated'} | {'refused'} | {'corrupt', why}.
-- A call run twice (Redis Cluster retries a command whose answer was lost)
-- finds the new access token it stored, a fresh random one: it answers as
-- it did the first time, instead of taking its own rotation for a reuse
-- that would revoke the grant (RFC 9700 §4.14.2 is about two parties).
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
if redis.call('EXISTS', KEYS[3]) == 1 then
    return {'rotated'}
end
if redis.call('EXISTS', KEYS[1]) == 0 or revoked(KEYS[1]) then
    return {'refused'}
end
if redis.call('HGET', KEYS[1], 'cur') ~= ARGV[1] then
    return {'refused'}
end
local raw = get_record(KEYS[2])
if raw == false then
    return {'corrupt', 'refresh record is not a string'}
end
if raw == nil then
    return {'refused'}
end
local exp = expiry_ms(raw)
if exp == nil then
    return {'corrupt', 'refresh record does not decode'}
end
if tonumber(ARGV[2]) >= exp then
    return {'refused'}
end
redis.call('SET', KEYS[3], ARGV[3], 'PXAT', ARGV[4])
extend(KEYS[1], ARGV[4])
if KEYS[6] then
    redis.call('SET', KEYS[6], ARGV[5], 'PXAT', ARGV[6])
    redis.call('HSET', KEYS[1], 'cur', ARGV[7])
    extend(KEYS[1], ARGV[6])
else
    redis.call('HDEL', KEYS[1], 'cur')
end
-- The bounds per grant: the new access token and the token retired now
-- join their indexes, and what exceeds them goes (see `index_add`).
index_add(KEYS[1], KEYS[4], 'a', hash_of(KEYS[1], KEYS[3]), ARGV[2], ARGV[4], MAX_ACCESS_PER_GRANT)
index_add(KEYS[1], KEYS[5], 'r', ARGV[1], ARGV[2], string.format('%d', exp), MAX_RETIRED_PER_GRANT)
return {'rotated'}
