--! include _common.lua
-- Claim up to ARGV[1] ready jobs for one Runner process, if its lease is valid.
--
-- KEYS[1] ready list, KEYS[2] the process's processing list, KEYS[3] leases set, KEYS[4] the
-- queue's throttle set, KEYS[5] the active list of a queue family (absent for a static queue).
-- ARGV[2] job key prefix, ARGV[3] process id, ARGV[4] throttle limit (0 when the queue is not
-- throttled), ARGV[5] throttle window in ms.
-- Returns {1, jobs as described at claim_jobs, ms until the throttle admits a job (0 unless it
-- is what limited the claim)}, or {0, {}, 0} when the lease has expired.

if not lease_valid(KEYS[3], ARGV[3]) then
  return {0, {}, 0}
end
local throttle = {KEYS[4], tonumber(ARGV[4]), tonumber(ARGV[5])}
local claimed, wait_ms = claim_jobs(KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[1]), throttle, KEYS[5])
return {1, claimed, wait_ms}
