-- revoke_grant: marks the grant revoked. Every lookup checks the mark, so all
-- tokens issued into the grant die at once, and issue/rotate refuse to add
-- more, for as long as the grant meta lives: its longest record, and at
-- least until ARGV[1] (now plus the revoked-grant TTL), which outlives every
-- standalone record of the grant (they are written only when they expire
-- before it). A grant with no meta (nothing stored but standalone records,
-- or all of it expired) gets a tombstone that lives until ARGV[1].
-- KEYS[1] grant meta
-- ARGV[1] the mark's least expiry, ms since the epoch
-- Returns {'ok'} | {'corrupt', why}.
if not meta_ok(KEYS[1]) then
    return {'corrupt', 'grant meta is not a hash'}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'rev', '1', 'exp', ARGV[1])
    redis.call('PEXPIREAT', KEYS[1], ARGV[1])
else
    redis.call('HSET', KEYS[1], 'rev', '1')
    extend(KEYS[1], ARGV[1])
end
return {'ok'}
