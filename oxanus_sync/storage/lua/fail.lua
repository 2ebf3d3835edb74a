--! include _common.lua
-- Record a failed attempt: schedule a retry or move the job to the dead set, then claim up to
-- ARGV[5] more jobs for the same process.
--
-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] stats hash, KEYS[4] ready list,
-- KEYS[5] retry set, KEYS[6] dead set, KEYS[7] leases set, KEYS[8] unique hash,
-- KEYS[9] throttle set, KEYS[10] the active list of a queue family (absent for a static queue).
-- ARGV[1] job id, ARGV[2] "retry" or "dead", ARGV[3] retry delay in ms, ARGV[4] error JSON,
-- ARGV[5] how many jobs to claim next, ARGV[6] job key prefix, ARGV[7] dead set maximum size,
-- ARGV[8] dead set maximum age in ms, ARGV[9] process id (jobs are claimed next only while
-- its lease is valid), ARGV[10] throttle limit (0 when not throttled), ARGV[11] throttle window
-- in ms, ARGV[12] "1" when the attempt timed out (counted in the stats as timed_out).
-- Returns {1, claimed}, or {0, {}} when the process no longer owned the job (see ack.lua).

local processing, job_key, stats = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
if redis.call('LREM', processing, -1, id) == 0 then
  return {0, {}}
end

local now = now_ms()
increment_field(job_key, 'attempt')
redis.call('HSET', job_key, 'error', ARGV[4])
redis.call('HINCRBY', stats, 'failed', 1)
if ARGV[12] == '1' then
  redis.call('HINCRBY', stats, 'timed_out', 1)
end

if ARGV[2] == 'retry' then
  redis.call('HINCRBY', stats, 'retried', 1)
  local due = now + tonumber(ARGV[3])
  redis.call('HSET', job_key, 'due_at', due)
  redis.call('ZADD', KEYS[5], due, id)
else
  release_unique(KEYS[8], job_key, id)
  redis.call('HINCRBY', stats, 'dead', 1)
  redis.call('HSET', job_key, 'dead_at', now)
  redis.call('ZADD', KEYS[6], now, id)
  trim_dead(KEYS[6], ARGV[6], now, tonumber(ARGV[7]), tonumber(ARGV[8]))
end

if tonumber(ARGV[5]) == 0 or not lease_valid(KEYS[7], ARGV[9]) then
  return {1, {}}
end

local throttle = {KEYS[9], tonumber(ARGV[10]), tonumber(ARGV[11])}
local claimed = claim_jobs(KEYS[4], processing, ARGV[6], tonumber(ARGV[5]), throttle, KEYS[10])
return {1, claimed}
