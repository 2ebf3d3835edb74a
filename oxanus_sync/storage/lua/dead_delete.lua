-- Delete dead jobs, each with its hash.
--
-- KEYS[1] dead set. ARGV[1] job key prefix, ARGV[2..] job ids, or none to delete the oldest
-- 500 (call again until it returns 0 to purge the set).
-- Returns the number of jobs deleted.

local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, 499)
end

local deleted = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', ARGV[1] .. id)
    deleted = deleted + 1
  end
end
return deleted
