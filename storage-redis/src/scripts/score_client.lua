-- score_client: a dynamically registered client's score in the set that
-- counts them for the cap follows its record's deadline once a token moved
-- it: set to ARGV[1] unless the member already holds a later finite score
-- (a slower instance's older deadline never lands last). A `+inf` score (a
-- client kept for good) is lowered, and a missing member is added back, so
-- a lost update counts a client too long, never too little.
-- KEYS[1] <prefix>dynamic-clients (sorted set: id -> unused_until ms, or +inf for none)
-- ARGV[1] the score (ms since the epoch, or '+inf')   ARGV[2] client id
-- Returns {'ok'}.
if key_type(KEYS[1]) ~= 'none' and key_type(KEYS[1]) ~= 'zset' then
    return {'corrupt', 'dynamic client set is not a sorted set'}
end
local current = redis.call('ZSCORE', KEYS[1], ARGV[2])
if current and ARGV[1] ~= '+inf' and current ~= 'inf' and current ~= '+inf'
    and tonumber(current) >= tonumber(ARGV[1]) then
    return {'ok'}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return {'ok'}
