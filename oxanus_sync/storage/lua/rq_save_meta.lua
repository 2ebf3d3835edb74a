-- Store an RQ-layer job's meta, if its record still exists.
--
-- KEYS[1] RQ record. ARGV[1] meta JSON.
-- Returns 1 when stored, 0 when the record is gone.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'meta', ARGV[1])
return 1
