-- take_code: atomically redeems a code. The code record is deleted and a
-- taken marker (t:<hash>) is left in the grant meta, so a replay answers
-- 'already' for as long as the grant lives.
-- KEYS[1] grant meta        KEYS[2] code record
-- ARGV[1] code hash (key form)   ARGV[2] now, ms since the epoch
-- Returns {'taken', record JSON} | {'already'} | {'unknown'} | {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
local marker = 't:' .. ARGV[1]
local raw = get_record(KEYS[2])
if raw == false then
    return {'corrupt', 'code record is not a string'}
end
if raw == nil then
    if redis.call('HEXISTS', KEYS[1], marker) == 1 then
        return {'already'}
    end
    return {'unknown'}
end
local exp = expiry_ms(raw)
if exp == nil then
    return {'corrupt', 'code record does not decode'}
end
-- Expired by the caller's clock (the TTL may not have fired yet), the grant
-- is revoked, or the grant is gone: no live code.
if tonumber(ARGV[2]) >= exp or revoked(KEYS[1]) or redis.call('EXISTS', KEYS[1]) == 0 then
    return {'unknown'}
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], marker, '1')
-- The meta lived until the code's expiry: keep it (and the marker) five
-- minutes past the take, time for the exchange to issue its tokens, which
-- extend it further. Else a take just before expiry lets the meta lapse
-- before `issue`, and a replay finds no marker (RFC 6749 §4.1.2).
extend(KEYS[1], tonumber(ARGV[2]) + 300000)
return {'taken', raw}
