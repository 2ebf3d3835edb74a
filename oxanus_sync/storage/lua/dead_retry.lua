--! include _common.lua
-- Move a dead job back to the ready list with its attempt count reset.
--
-- KEYS[1] dead set, KEYS[2] ready list, KEYS[3] job hash, KEYS[4] the active list of a queue
-- family (absent for a static queue). ARGV[1] job id.
-- Returns 1 when the job was moved, 0 when it was not in the dead set.

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end

redis.call('HSET', KEYS[3], 'attempt', 0, 'reclaims', 0, 'ready_at', now_ms())
redis.call('HDEL', KEYS[3], 'dead_at', 'due_at')
push_ready(KEYS[2], KEYS[4], KEYS[3], ARGV[1], false)
return 1
