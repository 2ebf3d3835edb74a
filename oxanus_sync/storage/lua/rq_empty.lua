-- Delete every job waiting in a ready list, with its job hash, RQ record and results.
--
-- KEYS[1] ready list. ARGV[1] job key prefix, ARGV[2] RQ record prefix, ARGV[3] results prefix.
-- Returns the number of jobs deleted.

local ids = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. id, ARGV[2] .. id, ARGV[3] .. id)
end
redis.call('DEL', KEYS[1])
return #ids
