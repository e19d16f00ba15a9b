-- reserve_client: a place for a dynamically registered client (RFC 7591),
-- under the cap, in the set that counts them.
-- KEYS[1] <prefix>dynamic-clients (sorted set: id -> unused_until ms, or +inf for none)
-- ARGV[1] now, ms since the epoch   ARGV[2] the cap
-- ARGV[3] client id                 ARGV[4] score (unused_until ms, or +inf)
-- Returns {'ok'}, {'full'} (the cap is reached) or {'taken'} (the id is in the set).
if key_type(KEYS[1]) ~= 'none' and key_type(KEYS[1]) ~= 'zset' then
    return {'corrupt', 'dynamic client set is not a sorted set'}
end
-- Registrations that lapsed unused no longer count.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
    return {'taken'}
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return {'full'}
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
return {'ok'}
