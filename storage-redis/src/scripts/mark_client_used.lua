-- mark_client_used: a dynamically registered client's record replaced by its
-- used form (no `unused_until`, no expiry: a plain SET drops the PXAT), only
-- if it is still the very record that form was made from (compare-and-set),
-- so a record another writer replaced meanwhile is never overwritten.
-- KEYS[1] <prefix>client:<id>
-- ARGV[1] the record as read   ARGV[2] the record as used
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
redis.call('SET', KEYS[1], ARGV[2])
return {'ok'}
