--! include _common.lua
-- Cancel an RQ-layer job: take it out of wherever it waits, delete its job hash, and mark its
-- record canceled. A running job keeps its job hash, with a cancel flag that its worker reads.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] retry set, KEYS[4] deferred set,
-- KEYS[5] dead set, KEYS[6] job hash, KEYS[7] RQ record, KEYS[8] canceled registry.
-- ARGV[1] job id.
-- Returns "canceled", "already_canceled" or "not_found".

local id = ARGV[1]
if redis.call('EXISTS', KEYS[7]) == 0 then
  return 'not_found'
end
if redis.call('HGET', KEYS[7], 'status') == 'canceled' then
  return 'already_canceled'
end

local removed = redis.call('LREM', KEYS[1], 0, id)
for i = 2, 5 do
  removed = removed + redis.call('ZREM', KEYS[i], id)
end
if removed > 0 then
  redis.call('DEL', KEYS[6])
elseif redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('HSET', KEYS[6], 'cancel', 1)
end

local now = now_ms()
redis.call('HSET', KEYS[7], 'status', 'canceled', 'ended_at', now)
redis.call('PERSIST', KEYS[7])
redis.call('ZADD', KEYS[8], now, id)
return 'canceled'
