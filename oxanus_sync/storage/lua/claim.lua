--! include _common.lua
-- Claim up to ARGV[1] ready jobs for one Runner process.
--
-- KEYS[1] ready list, KEYS[2] the process's processing list. ARGV[2] job key prefix.
-- Returns the flat list described at claim_jobs.

return claim_jobs(KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[1]))
