--! include _common.lua
-- Record a periodic job's tick and enqueue its job, once per tick however many Runners call.
--
-- KEYS[1] the queue's cron hash (name -> last tick), KEYS[2] ready list, KEYS[3] job hash.
-- ARGV[1] periodic job name, ARGV[2] tick in ms, ARGV[3] job id, ARGV[4] payload,
-- ARGV[5] signature or empty, ARGV[6] "fire" to enqueue or "mark" to record the tick only.
-- Returns 1 when it enqueued the job, 2 when it only recorded the tick, 0 when the tick (or a
-- later one) was already recorded.

local last = redis.call('HGET', KEYS[1], ARGV[1])
if last and tonumber(last) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[6] == 'mark' or redis.call('EXISTS', KEYS[3]) == 1 then
  return 2
end

local now = now_ms()
redis.call('HSET', KEYS[3], 'payload', ARGV[4], 'enqueued_at', now, 'ready_at', now,
  'due_at', ARGV[2])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], 'sig', ARGV[5])
end
redis.call('LPUSH', KEYS[2], ARGV[3])
return 1
