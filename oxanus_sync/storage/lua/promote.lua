--! include _common.lua
-- Move due jobs from the scheduled and retry sets to the ready list, at most ARGV[2] from each.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] retry set, KEYS[4] the active list of a
-- queue family (absent for a static queue). ARGV[1] job key prefix.
-- Returns {jobs moved, earliest due time left in either set or -1, server time in
-- microseconds}. The microseconds let the caller sleep until a due time without adding the
-- fraction of a millisecond that a time in whole milliseconds drops.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local moved = 0
local next_due = -1

for s = 2, 3 do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[s], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[s], id)
    local job_key = ARGV[1] .. id
    if redis.call('EXISTS', job_key) == 1 then
      redis.call('HSET', job_key, 'ready_at', now)
      push_ready(KEYS[1], KEYS[4], job_key, id, false)
      moved = moved + 1
    end
  end

  local first = redis.call('ZRANGE', KEYS[s], 0, 0, 'WITHSCORES')
  if first[2] then
    local due = tonumber(first[2])
    if next_due < 0 or due < next_due then
      next_due = due
    end
  end
end

return {moved, next_due, now_us}
