--! include _common.lua
-- Create jobs and put them in the ready list, or in the scheduled set when they are due later.
--
-- KEYS[1] ready list (the member's list in a queue family), KEYS[2] scheduled set,
-- KEYS[3] the family's active list, KEYS[4] its members set, KEYS[5..] the job hash of each
-- job, in order.
-- ARGV[1] "now", "in" (ARGV[2] is a delay in ms) or "at" (ARGV[2] is a due time in ms);
-- ARGV[3] the member's key in a queue family, or empty for a static queue, whose KEYS[3] and
-- KEYS[4] are then not touched;
-- ARGV[4..] triples of job id, payload and signature (empty when payloads are not signed).
-- Returns one code per job: 1 created, 0 not created because a job with that id exists.

local now = now_ms()
local due = now
if ARGV[1] == 'in' then
  due = now + tonumber(ARGV[2])
elseif ARGV[1] == 'at' then
  due = tonumber(ARGV[2])
end

local member = ARGV[3]
local outcomes = {}
local ready_ids = {}
for i = 4, #ARGV, 3 do
  local id, payload, sig = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local job_key = KEYS[5 + (i - 4) / 3]

  if redis.call('EXISTS', job_key) == 1 then
    outcomes[#outcomes + 1] = 0
  elseif due <= now then
    redis.call('HSET', job_key, 'payload', payload, 'enqueued_at', now, 'ready_at', now)
    ready_ids[#ready_ids + 1] = id
    outcomes[#outcomes + 1] = 1
  else
    redis.call('HSET', job_key, 'payload', payload, 'enqueued_at', now, 'due_at', due)
    redis.call('ZADD', KEYS[2], due, id)
    outcomes[#outcomes + 1] = 1
  end
  if sig ~= '' and outcomes[#outcomes] == 1 then
    redis.call('HSET', job_key, 'sig', sig)
  end
  if member ~= '' and outcomes[#outcomes] == 1 then
    redis.call('HSET', job_key, 'member', member)
  end
end

if #ready_ids > 0 then
  local length = redis.call('LPUSH', KEYS[1], unpack(ready_ids))
  if member ~= '' and length == #ready_ids then
    redis.call('LPUSH', KEYS[3], member)
  end
end
if member ~= '' then
  redis.call('ZADD', KEYS[4], now, member)
end
return outcomes
