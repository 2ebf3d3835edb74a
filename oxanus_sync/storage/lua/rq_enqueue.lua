--! include _common.lua
-- Create an RQ-layer job, its job hash and its RQ record, and put its id where its mode names.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] job hash, KEYS[4] RQ record,
-- KEYS[5] results stream, KEYS[6] deferred set, KEYS[7] processing list (used by "inline").
-- ARGV[1] job id, ARGV[2] payload, ARGV[3] signature or empty, ARGV[4] mode: "now", "at"
-- (ARGV[5] is the due time in ms), "deferred" (waits for its dependencies) or "inline" (claimed
-- at once by the caller, which runs it), ARGV[6] "1" to put it at the front of the queue,
-- ARGV[7] meta JSON, ARGV[8] retries left, ARGV[9] time in ms the job may wait before it
-- starts, or 0 for no limit.
-- Returns {1, creation time in ms} when created, {0, 0} when a job with this id is still waiting
-- or running. The record gets `enqueued_at` only when the id enters the ready list, as in RQ,
-- so a scheduled or deferred job gets it later, from rq_release.lua or rq_start.lua.

if redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, 0}
end

local id = ARGV[1]
local now = now_ms()
local mode = ARGV[4]
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('HSET', KEYS[3], 'payload', ARGV[2], 'enqueued_at', now)
redis.call('HSET', KEYS[4], 'payload', ARGV[2], 'meta', ARGV[7], 'retries_left', ARGV[8])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], 'sig', ARGV[3])
  redis.call('HSET', KEYS[4], 'sig', ARGV[3])
end

if mode == 'now' then
  redis.call('HSET', KEYS[3], 'ready_at', now)
  redis.call('HSET', KEYS[4], 'status', 'queued', 'enqueued_at', now)
  -- The tail of the ready list is taken next.
  if ARGV[6] == '1' then
    redis.call('RPUSH', KEYS[1], id)
  else
    redis.call('LPUSH', KEYS[1], id)
  end
elseif mode == 'at' then
  redis.call('HSET', KEYS[3], 'due_at', ARGV[5])
  redis.call('HSET', KEYS[4], 'status', 'scheduled')
  redis.call('ZADD', KEYS[2], ARGV[5], id)
elseif mode == 'deferred' then
  redis.call('HSET', KEYS[4], 'status', 'deferred')
  redis.call('ZADD', KEYS[6], now, id)
else
  redis.call('HSET', KEYS[4], 'status', 'queued', 'enqueued_at', now)
  redis.call('LPUSH', KEYS[7], id)
end

if tonumber(ARGV[9]) > 0 then
  redis.call('PEXPIRE', KEYS[4], ARGV[9])
end
return {1, now}
