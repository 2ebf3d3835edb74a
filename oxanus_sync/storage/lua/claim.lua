--! include _common.lua
-- Claim up to ARGV[1] ready jobs for one Runner process, if its lease is valid.
--
-- KEYS[1] ready list, KEYS[2] the process's processing list, KEYS[3] leases set, KEYS[4] the
-- active list of a queue family (absent for a static queue).
-- ARGV[2] job key prefix, ARGV[3] process id.
-- Returns {1, jobs as described at claim_jobs or claim_family_jobs}, or {0, {}} when the lease
-- has expired.

if not lease_valid(KEYS[3], ARGV[3]) then
  return {0, {}}
end
if KEYS[4] then
  return {1, claim_family_jobs(KEYS[1], KEYS[4], KEYS[2], ARGV[2], tonumber(ARGV[1]))}
end
return {1, claim_jobs(KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[1]))}
