-- Drop a process's lease on one queue when it stops, unless its processing list still holds
-- jobs: those stay covered by the lease until it expires and another process reclaims them.
--
-- KEYS[1] leases set, KEYS[2] the process's processing list. ARGV[1] process id.
-- Returns 1 when the lease was dropped, 0 when jobs remain.

if redis.call('LLEN', KEYS[2]) > 0 then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
