-- poll_device: one poll of a device code (RFC 8628 §3.4, §3.5), mirroring
-- tessera's DeviceRecord::poll exactly, atomically.
-- KEYS[1] device record      ARGV[1] polling client id   ARGV[2] now, s since the epoch
-- Returns {'approved', record JSON} | {'pending'} | {'slow_down'} | {'denied'}
--       | {'expired'} | {'unknown'} | {'corrupt', why}.
local raw = get_record(KEYS[1])
if raw == nil then
    return {'unknown'}
end
if raw == false then
    return {'corrupt', 'device record is not a string'}
end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or type(rec['expires_at']) ~= 'number'
    or type(rec['status']) ~= 'table' or type(rec['interval']) ~= 'number' then
    return {'corrupt', 'device record does not decode'}
end
-- Another client's poll changes nothing.
if rec['client_id'] ~= ARGV[1] then
    return {'unknown'}
end
local now = tonumber(ARGV[2])
-- Expired and denied records are kept (their TTL ends the grace period),
-- so that a device whose answer was lost hears it again.
if now >= rec['expires_at'] then
    return {'expired'}
end
local state = rec['status']['state']
if state == 'approved' then
    redis.call('DEL', KEYS[1])
    return {'approved', raw}
end
if state == 'denied' then
    return {'denied'}
end
if state ~= 'pending' then
    return {'corrupt', 'device record has an unknown status'}
end
local last = rec['last_polled_at']
local early = type(last) == 'number' and now < last + rec['interval']
rec['last_polled_at'] = now
if early then
    rec['interval'] = rec['interval'] + 5
end
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
if early then
    return {'slow_down'}
end
return {'pending'}
