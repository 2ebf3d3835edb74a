--! include _common.lua
-- Record a failed attempt of an RQ-layer job: retry it now or later, or end it as failed, in
-- its job hash, the queue's sets and its RQ record at once.
--
-- KEYS[1] processing list, KEYS[2] job hash, KEYS[3] stats hash, KEYS[4] ready list,
-- KEYS[5] retry set, KEYS[6] dead set (the failed-job registry), KEYS[7] RQ record,
-- KEYS[8] results stream, KEYS[9] dependents set.
-- ARGV[1] job id, ARGV[2] mode: "requeue" (retry now), "retry" (after ARGV[3] ms), "failed"
-- (into the failed-job registry), "failed_unregistered" (failed, kept out of the registry),
-- ARGV[4] error JSON for the job hash, ARGV[5] traceback text, ARGV[6] failure time-to-live in
-- ms (-1 forever), ARGV[7] retries left, ARGV[8] "1" to retry at the front of the queue,
-- ARGV[9] worker name, ARGV[10] job key prefix, ARGV[11] dead set maximum size, ARGV[12] dead
-- set maximum age in ms, ARGV[13] final status ("failed" or "stopped").
-- Returns 2 when the job ended failed and has dependents, else 1, or 0 when the process no
-- longer owned the job (see ack.lua). A job canceled while it ran is not retried and stays
-- canceled.

local id = ARGV[1]
if redis.call('LREM', KEYS[1], -1, id) == 0 then
  return 0
end

local now = now_ms()
local mode = ARGV[2]
local has_record = redis.call('EXISTS', KEYS[7]) == 1
if has_record and redis.call('HGET', KEYS[7], 'status') == 'canceled' then
  redis.call('DEL', KEYS[2])
  redis.call('HINCRBY', KEYS[3], 'failed', 1)
  return 1
end
redis.call('HINCRBY', KEYS[2], 'attempt', 1)
redis.call('HSET', KEYS[2], 'error', ARGV[4])
redis.call('HINCRBY', KEYS[3], 'failed', 1)
if has_record then
  redis.call('HSET', KEYS[7], 'retries_left', ARGV[7], 'exc_info', ARGV[5])
end

if mode == 'requeue' or mode == 'retry' then
  redis.call('HINCRBY', KEYS[3], 'retried', 1)
  if mode == 'requeue' then
    redis.call('HSET', KEYS[2], 'ready_at', now)
    if ARGV[8] == '1' then
      redis.call('RPUSH', KEYS[4], id)
    else
      redis.call('LPUSH', KEYS[4], id)
    end
  else
    local due = now + tonumber(ARGV[3])
    redis.call('HSET', KEYS[2], 'due_at', due)
    redis.call('ZADD', KEYS[5], due, id)
  end
  if has_record then
    redis.call('HSET', KEYS[7], 'status', mode == 'requeue' and 'queued' or 'scheduled')
  end
  return 1
end

if mode == 'failed' then
  redis.call('HINCRBY', KEYS[3], 'dead', 1)
  redis.call('HSET', KEYS[2], 'dead_at', now)
  redis.call('ZADD', KEYS[6], now, id)
  trim_dead(KEYS[6], ARGV[10], now, tonumber(ARGV[11]), tonumber(ARGV[12]))
else
  redis.call('DEL', KEYS[2])
end

if has_record then
  local ttl = tonumber(ARGV[6])
  redis.call('HSET', KEYS[7], 'status', ARGV[13], 'ended_at', now)
  redis.call('XADD', KEYS[8], 'MAXLEN', 10, '*', 'type', 2, 'exc_string', ARGV[5],
    'created_at', now, 'worker_name', ARGV[9])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[7], ttl)
    redis.call('PEXPIRE', KEYS[8], ttl)
  else
    redis.call('PERSIST', KEYS[7])
  end
end
if redis.call('EXISTS', KEYS[9]) == 1 then
  return 2
end
return 1
