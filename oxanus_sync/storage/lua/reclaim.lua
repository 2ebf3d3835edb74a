--! include _common.lua
-- Take back the jobs of processes whose lease on this queue expired, at most ARGV[4] per call.
--
-- KEYS[1] ready list, KEYS[2] leases set, KEYS[3] the active list of a queue family (absent
-- for a static queue).
-- ARGV[1] processing list key prefix, ARGV[2] job key prefix, ARGV[3] how long in ms an expired
-- lease is kept after its list is empty, ARGV[4] the maximum number of jobs to move.
-- Returns the ids moved back to the ready list.
--
-- Each job leaves the processing list and enters its ready list in one script call, so a job is
-- never in two lists and two callers can never both move it. The reclaimed job goes to the tail
-- of its ready list (its member's list in a family), to run next, and its reclaims
-- counter grows by one. An expired lease is kept for ARGV[3] ms after its list is empty because
-- a BLMOVE the dead process sent before it stopped may still deliver one more job into the list.

local now = now_ms()
local limit = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 20)
local moved = {}

for i = 1, #expired, 2 do
  local process_id, expiry = expired[i], tonumber(expired[i + 1])
  local processing = ARGV[1] .. process_id

  while #moved < limit do
    local id = redis.call('RPOP', processing)
    if not id then
      break
    end

    -- A job whose hash is gone was deleted; its id is dropped.
    local job_key = ARGV[2] .. id
    if redis.call('EXISTS', job_key) == 1 then
      increment_field(job_key, 'reclaims')
      redis.call('HSET', job_key, 'ready_at', now)
      push_ready(KEYS[1], KEYS[3], job_key, id, true)
      moved[#moved + 1] = id
    end
  end

  if redis.call('LLEN', processing) == 0 and expiry + tonumber(ARGV[3]) < now then
    redis.call('ZREM', KEYS[2], process_id)
  end
end

return moved
