-- issue: adds an access token (and optionally a refresh token, which becomes
-- the grant's current one) to a grant, unless the grant is revoked.
-- KEYS[1] grant meta   KEYS[2] access record   KEYS[3] refresh record and
-- KEYS[4] the grant's access index (both only with a refresh token)
-- ARGV[1] access JSON  ARGV[2] access expiry ms
-- ARGV[3] refresh JSON ARGV[4] refresh expiry ms  ARGV[5] refresh hash (key form)   (only with a refresh token)
-- Returns {'ok'} | {'revoked'} | {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
if revoked(KEYS[1]) then
    return {'revoked'}
end
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[2])
extend(KEYS[1], ARGV[2])
if KEYS[3] then
    redis.call('SET', KEYS[3], ARGV[3], 'PXAT', ARGV[4])
    redis.call('HSET', KEYS[1], 'cur', ARGV[5])
    extend(KEYS[1], ARGV[4])
    -- Only a grant with a refresh token gathers access tokens (one per
    -- rotation): index them for the bound rotate_refresh keeps.
    -- The grant's first access token, scored 0: the first to go.
    index_add(KEYS[1], KEYS[4], 'a', hash_of(KEYS[1], KEYS[2]), 0, ARGV[2])
end
return {'ok'}
