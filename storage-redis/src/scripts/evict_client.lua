-- evict_client: a dynamically registered client forgotten to make room at the
-- cap, only if its record is still the very one the caller read (a client
-- that obtained a token meanwhile, and so has a later deadline, stays).
-- KEYS[1] <prefix>client:<id>
-- ARGV[1] the record as read
-- Returns {'ok'} (deleted), {'gone'} (no record) or {'changed'}.
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
redis.call('DEL', KEYS[1])
return {'ok'}
