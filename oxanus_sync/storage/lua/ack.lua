--! include _common.lua
-- Finish jobs that succeeded, then claim more for the same process. One call carries the acks
-- that a Runner's threads make at the same moment, so the lease check, the clock and the
-- counters are paid once for all of them.
--
-- KEYS[1] processing list, KEYS[2] stats hash, KEYS[3] ready list, KEYS[4] leases set,
-- KEYS[5] unique hash, KEYS[6] throttle set, KEYS[7] the active list of a queue family (absent
-- for a static queue). ARGV[1] job key prefix, ARGV[2] process id, ARGV[3] throttle limit (0
-- when not throttled), ARGV[4] throttle window in ms. Then come three arguments per job. The
-- first is its id, the second how many jobs to claim in its place, none unless the lease is
-- valid. The third is its field in the unique hash as the claim read it, "" when it has none.
-- Returns {claimed, owned}: the jobs claimed, as described at claim_jobs, and per job 1 when it
-- was finished or 0 when its id was no longer in the processing list. A 0 means that the
-- process's lease expired and another process took the job back, so this run must not count
-- and nothing is claimed in its place.

local job_prefix = ARGV[1]
local owned, finished, to_claim = {}, 0, 0

for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('LREM', KEYS[1], -1, id) == 0 then
    owned[#owned + 1] = 0
  else
    -- A job's unique field never changes once it is set, so the one read at the claim is
    -- still the job's own.
    local field = ARGV[i + 2]
    if field ~= '' then
      free_unique_field(KEYS[5], field, id)
    end
    redis.call('DEL', job_prefix .. id)
    owned[#owned + 1] = 1
    finished = finished + 1
    to_claim = to_claim + tonumber(ARGV[i + 1])
  end
end

if finished > 0 then
  redis.call('HINCRBY', KEYS[2], 'succeeded', finished)
end
if to_claim == 0 or not lease_valid(KEYS[4], ARGV[2]) then
  return {{}, owned}
end

local throttle = {KEYS[6], tonumber(ARGV[3]), tonumber(ARGV[4])}
local claimed = claim_jobs(KEYS[3], KEYS[1], job_prefix, to_claim, throttle, KEYS[7])
return {claimed, owned}
