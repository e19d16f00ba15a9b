-- put_code: stores an authorization code and makes its grant live at least as long.
-- KEYS[1] grant meta        KEYS[2] code record
-- ARGV[1] record JSON       ARGV[2] record expiry, ms since the epoch
-- Returns {'ok'} or {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[2])
extend(KEYS[1], ARGV[2])
return {'ok'}
