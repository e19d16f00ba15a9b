-- decide_device: records the user's decision on a pending, live request.
-- KEYS[1] device record      ARGV[1] status JSON   ARGV[2] now, s since the epoch
-- Returns {'decided'} | {'unchanged'} | {'corrupt', why}.
local raw = get_record(KEYS[1])
if raw == nil then
    return {'unchanged'}
end
if raw == false then
    return {'corrupt', 'device record is not a string'}
end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or type(rec['expires_at']) ~= 'number'
    or type(rec['status']) ~= 'table' then
    return {'corrupt', 'device record does not decode'}
end
if rec['status']['state'] ~= 'pending' or tonumber(ARGV[2]) >= rec['expires_at'] then
    return {'unchanged'}
end
local okd, status = pcall(cjson.decode, ARGV[1])
if not okd then
    return {'corrupt', 'decision does not decode'}
end
rec['status'] = status
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
return {'decided'}
