-- refresh_token: reads a refresh token record and whether it is the grant's
-- current one, unless the grant is revoked or gone. The caller checks the
-- record's expiry against its own clock.
-- KEYS[1] grant meta   KEYS[2] refresh record
-- ARGV[1] refresh hash (key form)
-- Returns {'current', JSON} | {'retired', JSON} | {'none'} | {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
if redis.call('EXISTS', KEYS[1]) == 0 or revoked(KEYS[1]) then
    return {'none'}
end
local raw = get_record(KEYS[2])
if raw == false then
    return {'corrupt', 'refresh record is not a string'}
end
if raw == nil then
    return {'none'}
end
if redis.call('HGET', KEYS[1], 'cur') == ARGV[1] then
    return {'current', raw}
end
return {'retired', raw}
