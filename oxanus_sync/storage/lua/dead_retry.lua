--! include _common.lua
-- Move a dead job back to the ready list with its attempt count reset. A unique job takes its
-- unique key again unless another live job has it, in which case it runs without the key.
--
-- KEYS[1] dead set, KEYS[2] ready list, KEYS[3] job hash, KEYS[4] unique hash, KEYS[5] the
-- active list of a queue family (absent for a static queue). ARGV[1] job id, ARGV[2] job key
-- prefix.
-- Returns 1 when the job was moved, 0 when it was not in the dead set.

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end

redis.call('HSET', KEYS[3], 'attempt', 0, 'reclaims', 0, 'ready_at', now_ms())
redis.call('HDEL', KEYS[3], 'dead_at', 'due_at')
local field = redis.call('HGET', KEYS[3], 'unique')
if field then
  local holder = redis.call('HGET', KEYS[4], field)
  if not holder or redis.call('EXISTS', ARGV[2] .. holder) == 0 then
    redis.call('HSET', KEYS[4], field, ARGV[1])
  end
end
push_ready(KEYS[2], KEYS[5], KEYS[3], ARGV[1], false)
return 1
