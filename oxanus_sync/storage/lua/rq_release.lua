--! include _common.lua
-- Move a deferred RQ-layer job whose dependencies all ended to its ready list, once.
--
-- KEYS[1] deferred set, KEYS[2] ready list, KEYS[3] job hash, KEYS[4] RQ record.
-- ARGV[1] job id, ARGV[2] "1" to put it at the front of the queue.
-- Returns 1 when moved, 0 when it was not deferred (already released, canceled or deleted).

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end

local now = now_ms()
redis.call('HSET', KEYS[3], 'ready_at', now)
if ARGV[2] == '1' then
  redis.call('RPUSH', KEYS[2], ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[4], 'status', 'queued', 'enqueued_at', now)
return 1
