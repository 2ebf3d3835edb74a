-- Delete an RQ-layer job: its id from every list and set of its queue, its job hash, its RQ
-- record, its results and its dependents set. A running job finishes, but nothing is recorded.
--
-- KEYS[1] ready list, KEYS[2..7] scheduled, retry, dead, deferred, canceled and finished sets,
-- KEYS[8] job hash, KEYS[9] RQ record, KEYS[10] results stream, KEYS[11] dependents set.
-- ARGV[1] job id.
-- Returns 1 when the record existed, else 0.

local id = ARGV[1]
redis.call('LREM', KEYS[1], 0, id)
for i = 2, 7 do
  redis.call('ZREM', KEYS[i], id)
end
local existed = redis.call('EXISTS', KEYS[9])
redis.call('DEL', KEYS[8], KEYS[9], KEYS[10], KEYS[11])
return existed
