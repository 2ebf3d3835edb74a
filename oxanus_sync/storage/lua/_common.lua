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

-- Move up to `count` ids from the tail of `ready` to the head of `processing` and return, for
-- each job, its id followed by the job hash fields payload, attempt, reclaims, enqueued_at,
-- due_at, sig and state. An id whose hash is gone (the job was deleted) is dropped on the way.
local function claim_jobs(ready, processing, job_prefix, count)
  local claimed = {}
  local taken, scanned = 0, 0
  while taken < count and scanned < count * 4 + 10 do
    scanned = scanned + 1
    local id = redis.call('LMOVE', ready, processing, 'RIGHT', 'LEFT')
    if not id then
      break
    end

    local fields = redis.call('HMGET', job_prefix .. id,
      'payload', 'attempt', 'reclaims', 'enqueued_at', 'due_at', 'sig', 'state')
    if fields[1] then
      claimed[#claimed + 1] = id
      for i = 1, 7 do
        claimed[#claimed + 1] = fields[i]
      end
      taken = taken + 1
    else
      redis.call('LREM', processing, 1, id)
    end
  end
  return claimed
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

-- Claim up to `count` jobs of a queue family, one per member per turn: take the member at the
-- tail of `active`, move the oldest id of its list `ready .. ':' .. member` to the head of
-- `processing`, and push the member back at the head of `active` while its list has more.
-- Returns what claim_jobs returns, with each job's member after its fields. An id whose hash
-- is gone is dropped on the way, as in claim_jobs.
local function claim_family_jobs(ready, active, processing, job_prefix, count)
  local claimed = {}
  local taken, scanned = 0, 0
  while taken < count and scanned < count * 4 + 10 do
    scanned = scanned + 1
    local member = redis.call('RPOP', active)
    if not member then
      break
    end

    local list = ready .. ':' .. member
    local id = redis.call('LMOVE', list, processing, 'RIGHT', 'LEFT')
    if redis.call('LLEN', list) > 0 then
      redis.call('LPUSH', active, member)
    end

    if id then
      local fields = redis.call('HMGET', job_prefix .. id,
        'payload', 'attempt', 'reclaims', 'enqueued_at', 'due_at', 'sig', 'state')
      if fields[1] then
        claimed[#claimed + 1] = id
        for i = 1, 7 do
          claimed[#claimed + 1] = fields[i]
        end
        claimed[#claimed + 1] = member
        taken = taken + 1
      else
        redis.call('LREM', processing, 1, id)
      end
    end
  end
  return claimed
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
