--! include _common.lua
-- Mark a claimed RQ-layer job as started, unless it was canceled or deleted in the meantime.
--
-- KEYS[1] RQ record, KEYS[2] job hash. ARGV[1] worker name.
-- Returns {"started", the record as a flat list of fields and values}, or {"canceled"} or
-- {"not_found"}. A started job no longer expires, because its time-to-live limits only how
-- long it may wait. A job that was scheduled gets its `enqueued_at` here, from the time the
-- scheduler moved it to the ready list, because promote.lua does not touch RQ records.

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'not_found'}
end
if status == 'canceled' then
  return {'canceled'}
end
if redis.call('HEXISTS', KEYS[1], 'enqueued_at') == 0 then
  local ready_at = redis.call('HGET', KEYS[2], 'ready_at')
  if ready_at then
    redis.call('HSET', KEYS[1], 'enqueued_at', ready_at)
  end
end
redis.call('HSET', KEYS[1], 'status', 'started', 'started_at', now_ms(), 'worker_name', ARGV[1])
redis.call('HDEL', KEYS[1], 'ended_at')
redis.call('PERSIST', KEYS[1])
return {'started', redis.call('HGETALL', KEYS[1])}
