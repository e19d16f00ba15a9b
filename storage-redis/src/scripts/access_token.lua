-- access_token: reads an access token record unless its grant is revoked or gone.
-- The caller checks the record's expiry against its own clock.
-- KEYS[1] grant meta   KEYS[2] access record
-- Returns {'found', record JSON} | {'none'} | {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
if redis.call('EXISTS', KEYS[1]) == 0 or revoked(KEYS[1]) then
    return {'none'}
end
local raw = get_record(KEYS[2])
if raw == false then
    return {'corrupt', 'access record is not a string'}
end
if raw == nil then
    return {'none'}
end
return {'found', raw}
