"""Lua scripts: each state transition of a job is one atomic server-side step.

They run unchanged over the Redis protocol and over Upstash REST (EVAL). Time
comes in as an argument, never from the server clock, so scripts stay
deterministic (Upstash asks for that) and tests can age jobs. Job keys are
built from a prefix inside the scripts: the claim must reach jobs it only finds
while running, which rules out Redis Cluster but not Redis or Upstash.
"""

# Keep `repo -> queued job` pointing at a queued job, so a resubmission finds it.
_MARK_PENDING = """
local function mark_pending(pending_key, job_prefix, id, repo)
  local current = redis.call('HGET', pending_key, repo)
  if not current or redis.call('HGET', job_prefix .. current, 'state') ~= 'queued' then
    redis.call('HSET', pending_key, repo, id)
  end
end
"""

# KEYS: queue, pending_repos, job   ARGV: id, repo_url, cap, expire, job_prefix, field, value, ...
# -> {outcome, position, queue_size, job fields...}; outcome: created | existing | full
ENQUEUE = """
local function answer(outcome, id, size)
  local pos = 0
  if id ~= '' then pos = (redis.call('LPOS', KEYS[1], id) or -1) + 1 end
  local out = {outcome, pos, size}
  if id ~= '' then
    for _, v in ipairs(redis.call('HGETALL', ARGV[5] .. id)) do out[#out + 1] = v end
  end
  return out
end
local size = redis.call('LLEN', KEYS[1])
-- a retried call whose answer was lost: the job already exists
if redis.call('EXISTS', KEYS[3]) == 1 then return answer('existing', ARGV[1], size) end
local pending = redis.call('HGET', KEYS[2], ARGV[2])
if pending and redis.call('HGET', ARGV[5] .. pending, 'state') == 'queued' then
  return answer('existing', pending, size)
end
if size >= tonumber(ARGV[3]) then return answer('full', '', size) end
redis.call('HSET', KEYS[3], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return answer('created', ARGV[1], size + 1)
"""

# KEYS: queue, leases, dead, history, workers, pending_repos, worker
# ARGV: now, lease_seconds, max_attempts, worker_id, lease_token, worker_json, retention,
#       record_expire, job_prefix, claim_prefix, history_limit, dead_limit
# -> job fields, or {} when the queue is empty
CLAIM = _MARK_PENDING + """
local now = tonumber(ARGV[1])
local jp = ARGV[9]
-- the heartbeat rides on every poll: an idle worker costs one command per tick
redis.call('SET', KEYS[7], ARGV[6], 'EX', ARGV[7])
redis.call('ZADD', KEYS[5], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[7]))
-- a retried call whose answer was lost: hand back the job it already leased
local prior = redis.call('GET', ARGV[10] .. ARGV[5])
if prior then return redis.call('HGETALL', jp .. prior) end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  local key = jp .. id
  if redis.call('HGET', key, 'state') == 'running' then
    local attempts = tonumber(redis.call('HGET', key, 'attempts'))
    if attempts >= tonumber(ARGV[3]) then
      local err = 'lease expired on attempt ' .. attempts .. ' of ' .. ARGV[3] ..
        ' (worker stopped answering); dead-lettered'
      redis.call('HSET', key, 'state', 'dead', 'finished_at', now, 'error', err,
        'lease_token', '', 'lease_deadline', 0)
      redis.call('EXPIRE', key, ARGV[7])
      redis.call('LPUSH', KEYS[3], id)
      redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[12]) - 1)
      local started = tonumber(redis.call('HGET', key, 'started_at')) or now
      redis.call('LPUSH', KEYS[4], cjson.encode({
        job_id = id, repo_url = redis.call('HGET', key, 'repo_url'), status = 'dead',
        duration_seconds = math.max(0, now - started), files_processed = 0,
        embeddings_generated = 0, timestamp = now, attempts = attempts,
        worker_id = redis.call('HGET', key, 'worker_id'), error = err}))
      redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[11]) - 1)
    else
      redis.call('HSET', key, 'state', 'queued', 'worker_id', '', 'lease_token', '',
        'lease_deadline', 0, 'stage', '', 'progress', 0)
      -- back to the head: it has waited longest
      redis.call('LPUSH', KEYS[1], id)
      mark_pending(KEYS[6], jp, id, redis.call('HGET', key, 'repo_url'))
    end
  end
end

while true do
  local id = redis.call('LPOP', KEYS[1])
  if not id then return {} end
  local key = jp .. id
  -- ids whose record expired (queued far past its TTL) are dropped here
  if redis.call('HGET', key, 'state') == 'queued' then
    local deadline = now + tonumber(ARGV[2])
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'running', 'worker_id', ARGV[4], 'lease_token', ARGV[5],
      'lease_deadline', deadline, 'started_at', now, 'stage', '', 'progress', 0)
    redis.call('EXPIRE', key, ARGV[8])
    redis.call('ZADD', KEYS[2], deadline, id)
    local repo = redis.call('HGET', key, 'repo_url')
    if redis.call('HGET', KEYS[6], repo) == id then redis.call('HDEL', KEYS[6], repo) end
    redis.call('SET', ARGV[10] .. ARGV[5], id, 'EX', ARGV[2])
    return redis.call('HGETALL', key)
  end
end
"""

# KEYS: worker, workers, leases, job   ARGV: now, worker_id, worker_json, retention,
#       job_id ('' for none), lease_token, lease_deadline, stage, progress
# -> 1, or 0 when the job's lease is no longer this worker's
HEARTBEAT = """
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
if ARGV[5] == '' then return 1 end
if redis.call('HGET', KEYS[4], 'lease_token') ~= ARGV[6]
    or redis.call('HGET', KEYS[4], 'state') ~= 'running' then
  return 0
end
redis.call('HSET', KEYS[4], 'lease_deadline', ARGV[7], 'stage', ARGV[8], 'progress', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[5])
return 1
"""

# KEYS: job, leases, history, worker, workers
# ARGV: job_id, lease_token, history_json, worker_json, now, worker_id, retention,
#       history_limit, field, value, ...
# -> 1, or 0 when the job's lease is no longer this worker's
FINISH = """
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[2] then return 0 end
-- a retried call finds the job already finished under its token: done, not lost
if redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('HSET', KEYS[1], 'lease_deadline', 0, unpack(ARGV, 9))
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('LPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
end
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[7])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[6])
return 1
"""

# KEYS: job, leases, queue, pending_repos, worker, workers
# ARGV: job_id, lease_token, worker_json, now, worker_id, retention, job_prefix
# -> 1, or 0 when the job's lease is no longer this worker's
RELEASE = _MARK_PENDING + """
redis.call('SET', KEYS[5], ARGV[3], 'EX', ARGV[6])
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[5])
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[2]
    or redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
-- a graceful stop is not the job's fault: the attempt does not count
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('HSET', KEYS[1], 'state', 'queued', 'worker_id', '', 'lease_token', '',
  'lease_deadline', 0, 'stage', '', 'progress', 0)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
mark_pending(KEYS[4], ARGV[7], ARGV[1], redis.call('HGET', KEYS[1], 'repo_url'))
return 1
"""

# KEYS: queue, leases, workers, history, dead   ARGV: history_limit, dead_limit, job_prefix,
#       worker_prefix
# -> {pending, running, {worker_json...}, {history_json...}, {{dead job fields}...}}
# One command for everything the status page shows: on Upstash every command counts.
OVERVIEW = """
local function head(key, n)
  if n <= 0 then return {} end  -- LRANGE 0 -1 would be the whole list
  return redis.call('LRANGE', key, 0, n - 1)
end
local workers = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local status = redis.call('GET', ARGV[4] .. id)
  if status then workers[#workers + 1] = status end
end
local dead = {}
for _, id in ipairs(head(KEYS[5], tonumber(ARGV[2]))) do
  local fields = redis.call('HGETALL', ARGV[3] .. id)
  if #fields > 0 then dead[#dead + 1] = fields end
end
return {redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2]), workers,
  head(KEYS[4], tonumber(ARGV[1])), dead}
"""
