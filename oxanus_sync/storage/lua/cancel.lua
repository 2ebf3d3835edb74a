--! include _common.lua
-- Cancel a job: delete it if it waits in the ready list or the scheduled or retry set, or flag
-- it for its Runner if it is running.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] retry set, KEYS[4] job hash,
-- KEYS[5] stats hash, KEYS[6] dead set, KEYS[7] unique hash, KEYS[8] the active list of a
-- queue family (absent for a static queue). ARGV[1] job id.
-- Returns "cancelled", "requested", "dead" (use the dead-set API) or "not_found".

if redis.call('EXISTS', KEYS[4]) == 0 then
  return 'not_found'
end

-- A family job waits in its member's list, and a member whose list empties leaves `active`.
local ready = KEYS[1]
local member = false
if KEYS[8] then
  member = redis.call('HGET', KEYS[4], 'member') or ''
  ready = ready .. ':' .. member
end
local removed_ready = redis.call('LREM', ready, 0, ARGV[1])
if member and removed_ready > 0 and redis.call('LLEN', ready) == 0 then
  redis.call('LREM', KEYS[8], 0, member)
end

local removed = removed_ready
  + redis.call('ZREM', KEYS[2], ARGV[1])
  + redis.call('ZREM', KEYS[3], ARGV[1])
if removed > 0 then
  release_unique(KEYS[7], KEYS[4], ARGV[1])
  redis.call('DEL', KEYS[4])
  redis.call('HINCRBY', KEYS[5], 'cancelled', 1)
  return 'cancelled'
end

if redis.call('ZSCORE', KEYS[6], ARGV[1]) then
  return 'dead'
end
redis.call('HSET', KEYS[4], 'cancel', 1)
return 'requested'
