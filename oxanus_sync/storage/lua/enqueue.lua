--! include _common.lua
-- Create jobs and put them in the ready list, or in the scheduled set when they are due later.
-- A unique job first checks the queue's unique hash: while another job of the same type and key
-- exists, the new one is skipped or replaces that job's arguments, by its conflict policy.
--
-- KEYS[1] ready list, KEYS[2] scheduled set, KEYS[3] retry set, KEYS[4] unique hash,
-- KEYS[5] the active list and KEYS[6] the members set of a queue family (not touched for a
-- static queue). Job hashes are ARGV[3] followed by the job id, in the same hash tag.
-- ARGV[1] "now", "in" (ARGV[2] is a delay in ms) or "at" (ARGV[2] is a due time in ms);
-- ARGV[3] job key prefix. ARGV[4] the member's key in a queue family, empty for a static
-- queue. ARGV[5] "5" when the jobs carry unique fields, else "3".
-- ARGV[6..] groups of that many values: job id, payload and signature (empty when payloads
-- are not signed). With "5", each group adds the unique field (empty when the job is not
-- unique) and the conflict policy ("skip" or "replace"), so a batch without unique jobs sends
-- two values fewer per job.
-- Returns a code and a job id per job: 1 and its id when created, 0 and its id when a job with
-- that id already exists, 2 and the existing job's id when a unique job was skipped, 3 and the
-- existing job's id when that job took the new arguments.

local scheduled, retry, unique, active = KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local job_prefix, member = ARGV[3], ARGV[4]
-- A family job waits in its member's list (see keys.py), and a member with ready jobs is in
-- `active` exactly once.
local ready = KEYS[1]
if member ~= '' then
  ready = ready .. ':' .. member
end
local now = now_ms()
local due = now
if ARGV[1] == 'in' then
  due = now + tonumber(ARGV[2])
elseif ARGV[1] == 'at' then
  due = tonumber(ARGV[2])
end

-- Ready ids are pushed in one LPUSH; a unique job flushes them first so that order is kept.
local pending = {}
local function push_ids(ids)
  local length = redis.call('LPUSH', ready, unpack(ids))
  if member ~= '' and length == #ids then
    redis.call('LPUSH', active, member)
  end
end

local function flush_ready()
  if #pending > 0 then
    push_ids(pending)
    pending = {}
  end
end

local function create(job_key, id, payload, sig)
  if due <= now then
    redis.call('HSET', job_key, 'payload', payload, 'enqueued_at', now, 'ready_at', now)
    pending[#pending + 1] = id
  else
    redis.call('HSET', job_key, 'payload', payload, 'enqueued_at', now, 'due_at', due)
    redis.call('ZADD', scheduled, due, id)
  end
  if sig ~= '' then
    redis.call('HSET', job_key, 'sig', sig)
  end
  if member ~= '' then
    redis.call('HSET', job_key, 'member', member)
  end
end

-- Give the not yet started job `id` new arguments and the new due time, as if enqueued anew.
-- Returns false when the job is running: a started job keeps its arguments.
local function replace(id, payload, sig)
  local waiting = redis.call('ZSCORE', scheduled, id) or redis.call('ZSCORE', retry, id)
  -- NOTE: LPOS scans the ready list, so replacing a job deep in a long list costs O(length).
  if not waiting and not redis.call('LPOS', ready, id) then
    return false
  end

  local job_key = job_prefix .. id
  redis.call('HDEL', job_key, 'sig', 'error', 'state', 'due_at')
  redis.call('HSET', job_key, 'payload', payload, 'attempt', 0, 'reclaims', 0)
  if sig ~= '' then
    redis.call('HSET', job_key, 'sig', sig)
  end

  if due <= now then
    if waiting then
      redis.call('ZREM', scheduled, id)
      redis.call('ZREM', retry, id)
      push_ids({id})
      redis.call('HSET', job_key, 'ready_at', now)
    end
  else
    if not waiting then
      redis.call('LREM', ready, 1, id)
      if member ~= '' and redis.call('LLEN', ready) == 0 then
        redis.call('LREM', active, 0, member)
      end
    end
    redis.call('ZREM', retry, id)
    redis.call('ZADD', scheduled, due, id)
    redis.call('HSET', job_key, 'due_at', due)
  end
  return true
end

local function enqueue_unique(job_key, id, payload, sig, field, policy)
  flush_ready()
  local holder = redis.call('HGET', unique, field)
  if holder and redis.call('EXISTS', job_prefix .. holder) == 1 then
    if policy == 'replace' and replace(holder, payload, sig) then
      return 3, holder
    end
    return 2, holder
  end

  -- The key is free, or held by a job that no longer exists and so cannot block anyone.
  create(job_key, id, payload, sig)
  redis.call('HSET', job_key, 'unique', field)
  redis.call('HSET', unique, field, id)
  flush_ready()
  return 1, id
end

local results = {}
local stride = tonumber(ARGV[5])
for i = 6, #ARGV, stride do
  local id, payload, sig = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local field, policy = '', 'skip'
  if stride == 5 then
    field, policy = ARGV[i + 3], ARGV[i + 4]
  end
  local job_key = job_prefix .. id
  local code, result_id = 1, id

  if redis.call('EXISTS', job_key) == 1 then
    code = 0
  elseif field ~= '' then
    code, result_id = enqueue_unique(job_key, id, payload, sig, field, policy)
  else
    create(job_key, id, payload, sig)
  end
  results[#results + 1] = code
  results[#results + 1] = result_id
end

flush_ready()
if member ~= '' then
  redis.call('ZADD', KEYS[6], now, member)
end
return results
