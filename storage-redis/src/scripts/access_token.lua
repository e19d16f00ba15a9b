-- access_token: reads an access token record unless its grant is revoked or gone.
-- The caller checks the record's expiry against its own clock.
-- KEYS[1] grant meta   KEYS[2] access record   KEYS[3] standalone access record
-- A record is live only while its grant meta lives and is not revoked; a
-- standalone record (a fresh client-credentials grant, written with one SET)
-- is live without a meta, and dead under a revocation mark.
-- Returns {'found', record JSON} | {'none'} | {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
local raw
if redis.call('EXISTS', KEYS[1]) == 1 then
    if revoked(KEYS[1]) then
        return {'none'}
    end
    raw = get_record(KEYS[2])
    if raw == nil then
        raw = get_record(KEYS[3])
    end
else
    raw = get_record(KEYS[3])
end
if raw == false then
    return {'corrupt', 'access record is not a string'}
end
if raw == nil then
    return {'none'}
end
return {'found', raw}
