--! include _common.lua
-- Renew a process's lease on one queue.
--
-- KEYS[1] leases set. ARGV[1] process id, ARGV[2] lease length in ms.
-- Returns {1 if the lease was still valid before this call else 0, server time}. A process
-- whose lease expired or vanished may have had its jobs reclaimed by another process.

local now = now_ms()
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {(expiry and tonumber(expiry) >= now) and 1 or 0, now}
