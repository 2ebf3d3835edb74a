--! include _common.lua
-- Give a claimed job back: move it from the processing list to the front of the ready list
-- (the tail, taken next), as on shutdown for a job that has not finished.
--
-- KEYS[1] processing list, KEYS[2] ready list, KEYS[3] job hash, KEYS[4] the active list of a
-- queue family (absent for a static queue). ARGV[1] job id.
-- Returns 1 when the job was moved, 0 when the process no longer owned it.

if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end

push_ready(KEYS[2], KEYS[4], KEYS[3], ARGV[1], true)
redis.call('HSET', KEYS[3], 'ready_at', now_ms())
return 1
