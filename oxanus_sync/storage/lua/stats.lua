--! include _common.lua
-- Read one queue's counts in one call.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] retry set, KEYS[4] dead set,
-- KEYS[5] stats hash, KEYS[6] leases set. ARGV[1] job key prefix, ARGV[2] processing prefix.
-- Returns {ready, scheduled, retry, dead, latency in ms (age of the oldest ready job, 0 when
-- none), running (jobs in the processing lists of live processes), counters as a flat list}.

local now = now_ms()
local latency = 0
local oldest = redis.call('LINDEX', KEYS[1], -1)
if oldest then
  local ready_at = redis.call('HGET', ARGV[1] .. oldest, 'ready_at')
  if ready_at then
    latency = math.max(0, now - tonumber(ready_at))
  end
end

local running = 0
for _, process_id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], now, '+inf')) do
  running = running + redis.call('LLEN', ARGV[2] .. process_id)
end

return {
  redis.call('LLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  latency,
  running,
  redis.call('HGETALL', KEYS[5]),
}
