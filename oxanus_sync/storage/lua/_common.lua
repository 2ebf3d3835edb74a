-- Shared helpers, prepended by the loader to every script that starts with "--! include _common.lua".

-- Current time in milliseconds on the Redis server's clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Return true when `process_id` holds an unexpired lease in `leases`. A process whose lease
-- expired must not claim: a peer may be reclaiming its processing list at this moment.
local function lease_valid(leases, process_id)
  local expiry = redis.call('ZSCORE', leases, process_id)
  return expiry ~= false and tonumber(expiry) >= now_ms()
end

-- Return how many more jobs the queue's throttle admits now, and when none, the time in ms
-- until the oldest admission leaves the window. `throttle` is a sorted set of admissions
-- scored by time; a limit of 0 means that the queue is not throttled. The limit and window
-- are kept in `<throttle>:settings` for the stats script, for an hour after the last claim.
local function throttle_room(throttle, limit, window_ms, now)
  if limit == 0 then
    return math.huge, 0
  end
  local settings = throttle .. ':settings'
  redis.call('HSET', settings, 'limit', limit, 'window_ms', window_ms)
  redis.call('PEXPIRE', settings, window_ms + 3600000)
  redis.call('ZREMRANGEBYSCORE', throttle, '-inf', now - window_ms)
  local used = redis.call('ZCARD', throttle)
  if used < limit then
    return limit - used, 0
  end
  local oldest = redis.call('ZRANGE', throttle, 0, 0, 'WITHSCORES')
  return 0, tonumber(oldest[2]) + window_ms - now
end

-- Record the admission of job `id` in `throttle`. The set expires a second after the window
-- of its newest admission.
local function throttle_admit(throttle, window_ms, now, id)
  redis.call('ZADD', throttle, now, now .. ':' .. id)
  redis.call('PEXPIRE', throttle, window_ms + 1000)
end

-- Delete `field` from the `unique` hash while it still maps to the job `id`. A field that
-- another job took over stays.
local function free_unique_field(unique, field, id)
  if redis.call('HGET', unique, field) == id then
    redis.call('HDEL', unique, field)
  end
end

-- Release the unique key that the job `id` holds in the `unique` hash, if any, so that a new job
-- with the same type and key can be enqueued. Call it before the job hash is deleted or the job
-- goes dead.
local function release_unique(unique, job_key, id)
  -- A job key that is not a hash (edited by hand) has no unique field, and pcall keeps its
  -- WRONGTYPE error from failing the script.
  local field = redis.pcall('HGET', job_key, 'unique')
  if type(field) == 'string' then
    free_unique_field(unique, field, id)
  end
end

-- Push `id` back to the ready list it belongs to: at the head, or at the tail (taken next)
-- when `at_tail` is true. `active` is nil for a static queue, whose jobs go to `ready`. In a
-- queue family the id goes to its member's list, `ready .. ':' .. member` (see keys.py), and a
-- member whose list was empty joins `active`, at the same end as the job.
local function push_ready(ready, active, job_key, id, at_tail)
  local push = at_tail and 'RPUSH' or 'LPUSH'
  if not active then
    redis.call(push, ready, id)
    return
  end

  -- Every family job gets its member at enqueue. A job without one goes to the list of the
  -- member "", because no family claim reads `ready`.
  local member = redis.call('HGET', job_key, 'member') or ''
  if redis.call(push, ready .. ':' .. member, id) == 1 then
    redis.call(push, active, member)
  end
end

-- Move the next ready id to the head of `processing`. For a static queue (`active` nil) it is
-- the tail of `ready`. For a queue family it is the tail of the list of the member at the tail
-- of `active`, and that member goes back to the head of `active` while its list has more, so
-- members take turns. Returns false when no job is ready, else true, the id (false when the
-- member's list was empty after all) and the member.
local function move_next_ready(ready, active, processing)
  if not active then
    local id = redis.call('LMOVE', ready, processing, 'RIGHT', 'LEFT')
    return id ~= false, id, nil
  end

  local member = redis.call('RPOP', active)
  if not member then
    return false
  end
  local list = ready .. ':' .. member
  local id = redis.call('LMOVE', list, processing, 'RIGHT', 'LEFT')
  if redis.call('LLEN', list) > 0 then
    redis.call('LPUSH', active, member)
  end
  return true, id, member
end

-- Claim up to `count` ready jobs into `processing` and return, for each job, its id followed
-- by the job hash fields payload, attempt, reclaims, enqueued_at, due_at, sig, state and
-- unique, and in a queue family (`active` given) its member. An id whose hash is gone (the job
-- was deleted) is dropped on the way. `throttle` is {key, limit, window in ms}: with a limit
-- above 0, each claimed job is an admission and the count is cut to what the window admits.
-- Also returns the ms to wait before the throttle admits another job, 0 when it was not the
-- throttle that stopped the claim.
local function claim_jobs(ready, processing, job_prefix, count, throttle, active)
  -- Only the throttle reads the clock, so an unthrottled claim skips the TIME call.
  local now = throttle[2] > 0 and now_ms() or 0
  local room, wait_ms = throttle_room(throttle[1], throttle[2], throttle[3], now)
  if room < count then
    count = room
  end

  local claimed = {}
  local taken, scanned = 0, 0
  while taken < count and scanned < count * 4 + 10 do
    scanned = scanned + 1
    local found, id, member = move_next_ready(ready, active, processing)
    if not found then
      break
    end

    local fields = id and redis.call('HMGET', job_prefix .. id,
      'payload', 'attempt', 'reclaims', 'enqueued_at', 'due_at', 'sig', 'state', 'unique')
    -- A hash without a payload is claimed all the same, so that its Runner sends it to the
    -- dead set with the reason. Only an id whose hash is gone is dropped.
    if fields and (fields[1] or redis.call('EXISTS', job_prefix .. id) == 1) then
      claimed[#claimed + 1] = id
      for i = 1, 8 do
        claimed[#claimed + 1] = fields[i]
      end
      if active then
        claimed[#claimed + 1] = member
      end
      taken = taken + 1
      if throttle[2] > 0 then
        throttle_admit(throttle[1], throttle[3], now, id)
      end
    elseif id then
      redis.call('LREM', processing, 1, id)
    end
  end
  return claimed, wait_ms
end

-- Add 1 to the integer field `field` of hash `key`, reading a value that is not an integer
-- (a hash edited by hand) as 0 instead of failing the script.
local function increment_field(key, field)
  local value = (tonumber(redis.call('HGET', key, field) or '0') or 0) + 1
  redis.call('HSET', key, field, value)
  return value
end

-- Drop dead jobs older than `max_age_ms` and the oldest beyond `max_count`, at most 100 a call
-- so that one call stays short; later calls finish the work.
local function trim_dead(dead, job_prefix, now, max_count, max_age_ms)
  local victims = redis.call('ZRANGEBYSCORE', dead, '-inf', now - max_age_ms, 'LIMIT', 0, 100)
  local excess = redis.call('ZCARD', dead) - #victims - max_count
  if excess > 0 then
    local oldest = redis.call('ZRANGE', dead, #victims, #victims + math.min(excess, 100) - 1)
    for _, id in ipairs(oldest) do
      victims[#victims + 1] = id
    end
  end

  for _, id in ipairs(victims) do
    redis.call('DEL', job_prefix .. id)
    redis.call('ZREM', dead, id)
  end
  return #victims
end
