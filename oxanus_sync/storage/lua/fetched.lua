-- Read the job that BLMOVE moved to the tail of a processing list, sent in the same write as
-- the BLMOVE so that the claim costs one round trip. Claims push to the head of a processing
-- list and nothing pushes to its tail, so after `BLMOVE ready processing RIGHT RIGHT` the
-- moved id stays at the tail until this script runs. When the BLMOVE timed out, the tail is
-- an older job, and the caller ignores the reply.
--
-- KEYS[1] processing list. ARGV[1] job key prefix. ARGV[2..] the job hash fields to read.
-- Returns the id followed by the fields' values, or false when the list is empty.

local id = redis.call('LINDEX', KEYS[1], -1)
if not id then
  return false
end
local reply = redis.call('HMGET', ARGV[1] .. id, unpack(ARGV, 2))
table.insert(reply, 1, id)
return reply
