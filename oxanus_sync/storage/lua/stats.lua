--! include _common.lua
-- Read one queue's counts in one call.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] retry set, KEYS[4] dead set,
-- KEYS[5] stats hash, KEYS[6] leases set, KEYS[7] unique hash, KEYS[8] throttle set,
-- KEYS[9] throttle settings hash. ARGV[1] job key prefix, ARGV[2] processing prefix.
-- Returns {ready, scheduled, retry, dead, latency in ms (age of the oldest ready job, 0 when
-- none), running (jobs claimed by processes with a valid lease), orphaned (jobs claimed by
-- processes whose lease expired, waiting to be reclaimed), counters as a flat list, unique
-- keys held, throttle}. The throttle is {} for a queue never claimed through one, else {limit,
-- window in ms, starts in the current window, ms until the next start is admitted (0 when
-- one is admitted now)}, with the settings of the last claim, if it was within the hour.
-- A count whose key has the wrong type is -1, so that one damaged key does not hide the rest.

-- Run a read command, returning `fallback` instead of raising when the key has the wrong type.
local function read(fallback, ...)
  local result = redis.pcall(...)
  if type(result) == 'table' and result.err then
    return fallback
  end
  return result
end

local now = now_ms()
local latency = 0
local oldest = read(false, 'LINDEX', KEYS[1], -1)
if oldest then
  local ready_at = read(false, 'HGET', ARGV[1] .. oldest, 'ready_at')
  if ready_at then
    latency = math.max(0, now - tonumber(ready_at))
  end
end

local running, orphaned = 0, 0
local leases = read({}, 'ZRANGE', KEYS[6], 0, -1, 'WITHSCORES')
for i = 1, #leases, 2 do
  local held = read(0, 'LLEN', ARGV[2] .. leases[i])
  if tonumber(leases[i + 1]) >= now then
    running = running + held
  else
    orphaned = orphaned + held
  end
end

local throttle = {}
local limit = tonumber(read(false, 'HGET', KEYS[9], 'limit') or '0')
local window_ms = tonumber(read(false, 'HGET', KEYS[9], 'window_ms') or '0')
if limit > 0 and window_ms > 0 then
  local since = '(' .. (now - window_ms)
  local used = read(0, 'ZCOUNT', KEYS[8], since, '+inf')
  local wait_ms = 0
  if used >= limit then
    local oldest = read({}, 'ZRANGEBYSCORE', KEYS[8], since, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if oldest[2] then
      wait_ms = math.max(0, tonumber(oldest[2]) + window_ms - now)
    end
  end
  throttle = {limit, window_ms, used, wait_ms}
end

return {
  read(-1, 'LLEN', KEYS[1]),
  read(-1, 'ZCARD', KEYS[2]),
  read(-1, 'ZCARD', KEYS[3]),
  read(-1, 'ZCARD', KEYS[4]),
  latency,
  running,
  orphaned,
  read({}, 'HGETALL', KEYS[5]),
  read(-1, 'HLEN', KEYS[7]),
  throttle,
}
