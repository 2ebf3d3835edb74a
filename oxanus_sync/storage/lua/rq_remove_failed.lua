-- Take a failed RQ-layer job out of the failed-job registry (the dead set) but keep its RQ
-- record, as RQ's FailedJobRegistry.remove does without delete_job. The job hash goes too,
-- because only the dead set would ever delete it; the record keeps its failure time-to-live.
--
-- KEYS[1] dead set, KEYS[2] job hash.
-- ARGV[1] job id.
-- Returns 1 when the id was in the dead set, else 0.

if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[2])
return 1
