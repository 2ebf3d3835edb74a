--! include _common.lua
-- Move a failed RQ-layer job from the dead set back to its ready list, as dead_retry.lua does,
-- and mark its record queued again.
--
-- KEYS[1] dead set, KEYS[2] ready list, KEYS[3] job hash, KEYS[4] RQ record.
-- ARGV[1] job id, ARGV[2] "1" to put it at the front of the queue.
-- Returns 1 when moved, 0 when it was not in the dead set.

local id = ARGV[1]
if redis.call('ZREM', KEYS[1], id) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end

redis.call('HSET', KEYS[3], 'attempt', 0, 'reclaims', 0, 'ready_at', now_ms())
redis.call('HDEL', KEYS[3], 'dead_at', 'due_at')
if ARGV[2] == '1' then
  redis.call('RPUSH', KEYS[2], id)
else
  redis.call('LPUSH', KEYS[2], id)
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'status', 'queued')
  redis.call('HDEL', KEYS[4], 'started_at', 'ended_at', 'exc_info', 'worker_name')
  redis.call('PERSIST', KEYS[4])
end
return 1
