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
-- A queue family also passes KEYS[10] active list, KEYS[11] members set and ARGV[3], a
-- member's key or empty for the whole family. ARGV[4] is the maximum number of active members
-- whose ready jobs are counted, and ARGV[5] the number of biggest backlogs to return. Its
-- reply ends with {members, active members, biggest backlogs as a flat list of member and
-- ready count}, and its `ready` and `latency` cover the given member, or the first ARGV[4]
-- active members.
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

-- Return the age in ms of the oldest job in ready list `list`, 0 when it is empty.
local function oldest_age(list)
  local oldest = read(false, 'LINDEX', list, -1)
  if oldest then
    local ready_at = read(false, 'HGET', ARGV[1] .. oldest, 'ready_at')
    if tonumber(ready_at) then
      return math.max(0, now - tonumber(ready_at))
    end
  end
  return 0
end

local ready = read(-1, 'LLEN', KEYS[1])
local latency = oldest_age(KEYS[1])
local family = nil
if KEYS[10] and ARGV[3] ~= '' then
  ready = read(-1, 'LLEN', KEYS[1] .. ':' .. ARGV[3])
  latency = oldest_age(KEYS[1] .. ':' .. ARGV[3])
end
if KEYS[10] then
  local backlogs = {}
  if ARGV[3] == '' then
    ready = 0
    for _, member in ipairs(read({}, 'LRANGE', KEYS[10], 0, tonumber(ARGV[4]) - 1)) do
      local list = KEYS[1] .. ':' .. member
      local length = read(0, 'LLEN', list)
      ready = ready + length
      latency = math.max(latency, oldest_age(list))
      backlogs[#backlogs + 1] = {member, length}
    end
  end
  table.sort(backlogs, function(a, b) return a[2] > b[2] end)
  local biggest = {}
  for i = 1, math.min(#backlogs, tonumber(ARGV[5])) do
    biggest[#biggest + 1] = backlogs[i][1]
    biggest[#biggest + 1] = backlogs[i][2]
  end
  family = {read(-1, 'ZCARD', KEYS[11]), read(-1, 'LLEN', KEYS[10]), biggest}
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
local limit = tonumber(read(false, 'HGET', KEYS[9], 'limit') or '0') or 0
local window_ms = tonumber(read(false, 'HGET', KEYS[9], 'window_ms') or '0') or 0
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

local counts = {
  ready,
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
if family then
  for _, value in ipairs(family) do
    counts[#counts + 1] = value
  end
end
return counts
