--! include _common.lua
-- Record an RQ-layer job that succeeded: acknowledge it as ack.lua does, mark its record
-- finished and store its result, all at once.
--
-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] stats hash, KEYS[4] RQ record,
-- KEYS[5] results stream, KEYS[6] finished registry, KEYS[7] dependents set.
-- ARGV[1] job id, ARGV[2] serialized return value, ARGV[3] result time-to-live in ms (-1 keeps
-- it forever, 0 deletes the record at once), ARGV[4] worker name.
-- Returns 2 when the job has dependents to release, else 1, or 0 when the process no longer
-- owned the job (see ack.lua); nothing is recorded then. A job canceled while it ran stays
-- canceled.

if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end

redis.call('DEL', KEYS[2])
redis.call('HINCRBY', KEYS[3], 'succeeded', 1)
-- The job was deleted while it ran: there is nothing left to record it in.
if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('HGET', KEYS[4], 'status') == 'canceled' then
  return 1
end

local now = now_ms()
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[4], 'status', 'finished', 'ended_at', now)
redis.call('XADD', KEYS[5], 'MAXLEN', 10, '*', 'type', 1, 'return_value', ARGV[2],
  'created_at', now, 'worker_name', ARGV[4])

if ttl == 0 then
  redis.call('DEL', KEYS[4], KEYS[5])
elseif ttl > 0 then
  redis.call('PEXPIRE', KEYS[4], ttl)
  redis.call('PEXPIRE', KEYS[5], ttl)
  redis.call('ZADD', KEYS[6], now + ttl, ARGV[1])
else
  redis.call('PERSIST', KEYS[4])
  redis.call('ZADD', KEYS[6], '+inf', ARGV[1])
end
if redis.call('EXISTS', KEYS[7]) == 1 then
  return 2
end
return 1
