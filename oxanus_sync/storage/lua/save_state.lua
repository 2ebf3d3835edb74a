-- Store a running job's progress state, if the process still owns the job.
--
-- KEYS[1] the process's processing list, KEYS[2] job hash. ARGV[1] job id, ARGV[2] state JSON.
-- Returns 1 when stored, 0 when the job is no longer in the processing list.

if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[2], 'state', ARGV[2])
return 1
