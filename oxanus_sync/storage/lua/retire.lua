--! include _common.lua
-- Remove idle members from a queue family's member registry, looking at most ARGV[2] of them.
--
-- KEYS[1] members set, KEYS[2] the family's ready list (the prefix of the members' lists).
-- ARGV[1] idle time in ms, ARGV[2] the maximum number of members to look at.
-- Returns the members removed.
--
-- A member is idle when its last enqueue is older than ARGV[1] and its ready list is empty. A
-- member that is old but still has ready jobs gets the current time as its score instead. The
-- next call then looks at other members, and this one after another idle time.

local now = now_ms()
local candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]),
  'LIMIT', 0, tonumber(ARGV[2]))
local removed = {}

for _, member in ipairs(candidates) do
  if redis.call('LLEN', KEYS[2] .. ':' .. member) == 0 then
    redis.call('ZREM', KEYS[1], member)
    removed[#removed + 1] = member
  else
    redis.call('ZADD', KEYS[1], now, member)
  end
end
return removed
