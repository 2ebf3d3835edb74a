--! include _common.lua
-- Finish a job that succeeded, then claim up to ARGV[2] more for the same process.
--
-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] stats hash, KEYS[4] ready list,
-- KEYS[5] leases set, KEYS[6] unique hash, KEYS[7] throttle set, KEYS[8] the active list of a
-- queue family (absent for a static queue). ARGV[1] job id, ARGV[2] how many jobs to claim
-- next (none unless the lease is valid), ARGV[3] job key prefix, ARGV[4] process id,
-- ARGV[5] throttle limit (0 when not throttled), ARGV[6] throttle window in ms.
-- Returns {1, claimed} or {0, {}} when the id was no longer in the processing list: the
-- process's lease expired and another process took the job back, so this run must not count.

if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return {0, {}}
end

release_unique(KEYS[6], KEYS[2], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HINCRBY', KEYS[3], 'processed', 1)
redis.call('HINCRBY', KEYS[3], 'succeeded', 1)
if tonumber(ARGV[2]) == 0 or not lease_valid(KEYS[5], ARGV[4]) then
  return {1, {}}
end

local throttle = {KEYS[7], tonumber(ARGV[5]), tonumber(ARGV[6])}
local claimed = claim_jobs(KEYS[4], KEYS[1], ARGV[3], tonumber(ARGV[2]), throttle, KEYS[8])
return {1, claimed}
