--! include _common.lua
-- Renew a process's lease on one queue.
--
-- KEYS[1] leases set. ARGV[1] process id, ARGV[2] lease length in ms.
-- Returns {1 if the lease existed before this call else 0, server time}. A running process that
-- finds its lease gone has had its jobs reclaimed by another process.

local now = now_ms()
local existed = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {existed and 1 or 0, now}
