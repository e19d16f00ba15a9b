-- mark_client_used: a dynamically registered client's record replaced by its
-- form after a token was issued (a later `unused_until`, or none), only if it
-- is still the very record that form was made from (compare-and-set), so a
-- record another writer replaced meanwhile is never overwritten. The key
-- expires at the new `unused_until` (PXAT), or never (a plain SET drops the
-- old expiry).
-- KEYS[1] <prefix>client:<id>
-- ARGV[1] the record as read   ARGV[2] the record as used
-- ARGV[3] the new expiry, ms since the epoch, or '' for none
-- Returns {'ok'}, {'gone'} (no record any more) or {'changed'} (replaced meanwhile).
local current = get_record(KEYS[1])
if current == nil then
    return {'gone'}
end
if current == false then
    return {'corrupt', 'client record is not a string'}
end
if current ~= ARGV[1] then
    return {'changed'}
end
if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
else
    redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return {'ok'}
