"""Lua scripts: each state transition of a job is one atomic server-side step.

They run unchanged over the Redis protocol and over Upstash REST (EVAL). Time is
the server's (`TIME`), never a caller's: a worker whose clock runs ahead cannot
expire a live lease, nor make a fresh job look stale. Redis replicates scripts
by their effects (the only mode since 7.0), so reading the clock before writing
is allowed. Job keys are built from a prefix inside the scripts: the claim must
reach jobs it only finds while running, which rules out Redis Cluster but not
Redis or Upstash.

A job's record has no expiry while it is queued or running (the queue is capped,
and running jobs are bounded by leases); it expires `retention` seconds after it
ends. So a job never vanishes unrecorded: every end -- complete, failed, skipped
for staleness, dead-lettered -- pushes the job's final fields to the history list
through `remember`, the one place that writes a history entry. The entry's
public form is made in Python (shared.jobs.history_record) when it is read.
"""

# The server's clock, in seconds. Lua numbers are doubles: microseconds survive.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])  -- exact below 2^53
"""

# Push a finished job's fields (its token left out: a capability) to the history.
_REMEMBER = """
local function remember(history_key, limit, job_key, summary)
  local flat = redis.call('HGETALL', job_key)
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  fields.lease_token = nil
  fields.summary = summary
  redis.call('LPUSH', history_key, cjson.encode(fields))
  redis.call('LTRIM', history_key, 0, limit - 1)
end
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

# Queued jobs older than their TTL leave the queue as skipped, recorded. `stale_key`
# ranks every queued job by the time it goes stale (submitted_at + ttl), so the sweep
# costs O(log n) plus the stale jobs, not a walk of the queue. Run wherever the queue is
# read to decide: enqueue and claim. A queue written by a release without the ranking
# gets it once (`rank_queued`), its ids without a record dropped.
_SKIP_STALE = _REMEMBER + """
local function rank_queued(queue_key, stale_key, jp)
  if redis.call('ZCARD', stale_key) >= redis.call('LLEN', queue_key) then return end
  for _, id in ipairs(redis.call('LRANGE', queue_key, 0, -1)) do
    local state, submitted, ttl = unpack(redis.call('HMGET', jp .. id, 'state',
      'submitted_at', 'ttl'))
    if state ~= 'queued' then
      redis.call('LREM', queue_key, 0, id)
    elseif not redis.call('ZSCORE', stale_key, id) then
      redis.call('ZADD', stale_key, tonumber(submitted) + tonumber(ttl), id)
    end
  end
end
local function skip_stale(queue_key, stale_key, pending_key, history_key, limit, jp, now,
                          retention)
  rank_queued(queue_key, stale_key, jp)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', stale_key, '-inf',
                                 string.format('(%.6f', now))) do
    redis.call('ZREM', stale_key, id)
    local key = jp .. id
    local state, submitted, ttl, repo = unpack(redis.call('HMGET', key, 'state',
      'submitted_at', 'ttl', 'repo_url'))
    redis.call('LREM', queue_key, 0, id)
    if state == 'queued' then
      if redis.call('HGET', pending_key, repo) == id then redis.call('HDEL', pending_key, repo) end
      redis.call('HSET', key, 'state', 'skipped', 'finished_at', now, 'reason',
        string.format('stale: waited %d s, longer than its TTL of %d s',
          math.floor(now - tonumber(submitted)), tonumber(ttl)))
      redis.call('EXPIRE', key, retention)
      remember(history_key, limit, key, '{}')
    end
  end
end
"""

# Back in the queue (a lease expired, a stop gave it back): at the head, ranked again.
_REQUEUE = """
local function requeue(queue_key, stale_key, key, id)
  redis.call('LPUSH', queue_key, id)
  local submitted, ttl = unpack(redis.call('HMGET', key, 'submitted_at', 'ttl'))
  redis.call('ZADD', stale_key, tonumber(submitted) + tonumber(ttl), id)
end
"""

# KEYS: queue, pending_repos, job, history, stale_at
# ARGV: id, repo_url, cap, job_prefix, retention, history_limit, ttl, field, value, ...
# -> {outcome, position, queue_size, job fields...}; outcome: created | existing | full
ENQUEUE = _NOW + _SKIP_STALE + """
local function answer(outcome, id, size, pos)
  if id ~= '' and not pos then pos = (redis.call('LPOS', KEYS[1], id) or -1) + 1 end
  local out = {outcome, pos or 0, size}
  if id ~= '' then
    for _, v in ipairs(redis.call('HGETALL', ARGV[4] .. id)) do out[#out + 1] = v end
  end
  return out
end
skip_stale(KEYS[1], KEYS[5], KEYS[2], KEYS[4], tonumber(ARGV[6]), ARGV[4], now, ARGV[5])
local size = redis.call('LLEN', KEYS[1])
-- a retried call whose answer was lost: the job already exists
if redis.call('EXISTS', KEYS[3]) == 1 then return answer('existing', ARGV[1], size) end
local pending = redis.call('HGET', KEYS[2], ARGV[2])
if pending and redis.call('HGET', ARGV[4] .. pending, 'state') == 'queued' then
  return answer('existing', pending, size)
end
if size >= tonumber(ARGV[3]) then return answer('full', '', size) end
redis.call('HSET', KEYS[3], unpack(ARGV, 8))
redis.call('HSET', KEYS[3], 'submitted_at', now)
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[7]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return answer('created', ARGV[1], size + 1, size + 1)
"""

# The worker's report, kept as sent (property 4); the time of the beat is the
# server's, the score in `workers`, which the overview hands back beside it.
_BEAT = """
local function beat(worker_key, workers_key, worker_json, worker_id, retention)
  redis.call('SET', worker_key, worker_json, 'EX', retention)
  redis.call('ZADD', workers_key, now, worker_id)
end
"""

# KEYS: fence  -> a token past the last issued (as a claim's), leased to nobody
ISSUE_FENCE = _NOW + """
local fence = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') + 1, now_us)
redis.call('SET', KEYS[1], string.format('%.0f', fence))
return string.format('%.0f', fence)
"""

# KEYS: queue, leases, dead, history, workers, pending_repos, worker, fence, stale_at,
#       running_repos
# ARGV: lease_seconds, max_attempts, worker_id, lease_token, worker_json, retention,
#       job_prefix, claim_prefix, history_limit, dead_limit
# -> job fields, or {} when the queue is empty
# Each lease gets a fencing token: microseconds of the claim, past the last one issued
# (shared.jobs.fence_from), written as an integer ('%.0f': Lua would print 1.8e+15).
CLAIM = _NOW + _MARK_PENDING + _SKIP_STALE + _REQUEUE + _BEAT + """
local jp, retention, limit = ARGV[7], ARGV[6], tonumber(ARGV[9])
-- the heartbeat rides on every poll: an idle worker costs one command per tick
beat(KEYS[7], KEYS[5], ARGV[5], ARGV[3], retention)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(retention))
-- a retried call whose answer was lost: hand back the job it already leased
local prior = redis.call('GET', ARGV[8] .. ARGV[4])
if prior then return redis.call('HGETALL', jp .. prior) end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('ZREM', KEYS[2], id)
  local key = jp .. id
  if redis.call('HGET', key, 'state') == 'running' then
    local attempts = tonumber(redis.call('HGET', key, 'attempts'))
    if attempts >= tonumber(ARGV[2]) then
      redis.call('HSET', key, 'state', 'dead', 'finished_at', now, 'lease_deadline', 0,
        'error', 'lease expired on attempt ' .. attempts .. ' of ' .. ARGV[2] ..
        ' (worker stopped answering); dead-lettered')
      redis.call('EXPIRE', key, retention)
      redis.call('LPUSH', KEYS[3], id)
      redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[10]) - 1)
      remember(KEYS[4], limit, key, '{}')
    else
      redis.call('HSET', key, 'state', 'queued', 'worker_id', '', 'lease_token', '',
        'lease_deadline', 0, 'stage', '', 'progress', 0)
      requeue(KEYS[1], KEYS[9], key, id)  -- at the head: it has waited longest
      mark_pending(KEYS[6], jp, id, redis.call('HGET', key, 'repo_url'))
    end
  end
end
skip_stale(KEYS[1], KEYS[9], KEYS[6], KEYS[4], limit, jp, now, retention)

-- The oldest job whose repository no other job is running: one repository, one job
-- at a time, on any number of workers. The lock is the running job's lease: a job that
-- ended, or whose lease ran out (requeued above), no longer holds it.
local id
for _, candidate in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local holder = redis.call('HGET', KEYS[10], redis.call('HGET', jp .. candidate, 'repo_url'))
  if not holder or redis.call('HGET', jp .. holder, 'state') ~= 'running' then
    id = candidate
    break
  end
end
if not id then return {} end
redis.call('LREM', KEYS[1], 1, id)
redis.call('ZREM', KEYS[9], id)
local key = jp .. id
local deadline = now + tonumber(ARGV[1])
local fence = math.max(tonumber(redis.call('GET', KEYS[8]) or '0') + 1, now_us)
redis.call('SET', KEYS[8], string.format('%.0f', fence))
redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'state', 'running', 'worker_id', ARGV[3], 'lease_token', ARGV[4],
  'lease_deadline', deadline, 'started_at', now, 'stage', '', 'progress', 0,
  'fence', string.format('%.0f', fence))
redis.call('ZADD', KEYS[2], deadline, id)
local repo = redis.call('HGET', key, 'repo_url')
if redis.call('HGET', KEYS[6], repo) == id then redis.call('HDEL', KEYS[6], repo) end
redis.call('HSET', KEYS[10], repo, id)
redis.call('SET', ARGV[8] .. ARGV[4], id, 'PX', math.ceil(tonumber(ARGV[1]) * 1000))
return redis.call('HGETALL', key)
"""

# KEYS: worker, workers, leases, job   ARGV: worker_id, worker_json, retention,
#       job_id ('' for none), lease_token, lease_seconds, stage, progress
# -> 1, or 0 when the job's lease is no longer this worker's
HEARTBEAT = _NOW + _BEAT + """
beat(KEYS[1], KEYS[2], ARGV[2], ARGV[1], ARGV[3])
if ARGV[4] == '' then return 1 end
if redis.call('HGET', KEYS[4], 'lease_token') ~= ARGV[5]
    or redis.call('HGET', KEYS[4], 'state') ~= 'running' then
  return 0
end
local deadline = now + tonumber(ARGV[6])
redis.call('HSET', KEYS[4], 'lease_deadline', deadline, 'stage', ARGV[7], 'progress', ARGV[8])
redis.call('ZADD', KEYS[3], deadline, ARGV[4])
return 1
"""

# KEYS: job, leases, history, worker, workers
# ARGV: job_id, lease_token, history_summary, worker_json, worker_id, retention,
#       history_limit, field, value, ...
# -> 1, or 0 when the job's lease is no longer this worker's
FINISH = _NOW + _REMEMBER + _BEAT + """
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[2] then return 0 end
-- a retried call finds the job already finished under its token: done, not lost
if redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('HSET', KEYS[1], 'lease_deadline', 0, 'finished_at', now, unpack(ARGV, 8))
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  redis.call('ZREM', KEYS[2], ARGV[1])
  remember(KEYS[3], tonumber(ARGV[7]), KEYS[1], ARGV[3])
end
beat(KEYS[4], KEYS[5], ARGV[4], ARGV[5], ARGV[6])
return 1
"""

# KEYS: job, leases, queue, pending_repos, worker, workers, stale_at
# ARGV: job_id, lease_token, worker_json, worker_id, retention, job_prefix
# -> 1, or 0 when the job's lease is no longer this worker's
RELEASE = _NOW + _MARK_PENDING + _REQUEUE + _BEAT + """
beat(KEYS[5], KEYS[6], ARGV[3], ARGV[4], ARGV[5])
if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[2]
    or redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
-- a graceful stop is not the job's fault: the attempt does not count
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('HSET', KEYS[1], 'state', 'queued', 'worker_id', '', 'lease_token', '',
  'lease_deadline', 0, 'stage', '', 'progress', 0)
redis.call('ZREM', KEYS[2], ARGV[1])
requeue(KEYS[3], KEYS[7], KEYS[1], ARGV[1])
mark_pending(KEYS[4], ARGV[6], ARGV[1], redis.call('HGET', KEYS[1], 'repo_url'))
return 1
"""

# KEYS: queue, leases, workers, history, dead, stale_at, pending_repos
# ARGV: history_limit, dead_limit, job_prefix, worker_prefix
# -> {pending, running, {worker_json, heartbeat_at, ...}, {history_json...},
#     {{dead job fields}...}, now, {repo_url, queued job id, ...}}
# One command for everything the status page shows: on Upstash every command counts.
# `now` (as a string: Lua numbers reply as integers) lets readers age heartbeats by
# the clock that stamped them.
OVERVIEW = _NOW + """
local function head(key, n)
  if n <= 0 then return {} end  -- LRANGE 0 -1 would be the whole list
  return redis.call('LRANGE', key, 0, n - 1)
end
local workers = {}
local beats = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #beats, 2 do
  local status = redis.call('GET', ARGV[4] .. beats[i])
  if status then
    workers[#workers + 1] = status
    workers[#workers + 1] = beats[i + 1]
  end
end
local dead = {}
for _, id in ipairs(head(KEYS[5], tonumber(ARGV[2]))) do
  local fields = redis.call('HGETALL', ARGV[3] .. id)
  if #fields > 0 then dead[#dead + 1] = fields end
end
-- stale jobs wait for the next enqueue or claim to be skipped; they are not pending
local pending = redis.call('LLEN', KEYS[1]) -
  redis.call('ZCOUNT', KEYS[6], '-inf', string.format('(%.6f', now))
-- Each repository's queued job, from the hash enqueue keeps for de-duplication (as
-- small as the capped queue): an entry is trusted only while its job is queued, fresh.
local queued = {}
local marks = redis.call('HGETALL', KEYS[7])
for i = 1, #marks, 2 do
  local id = marks[i + 1]
  local stale_at = redis.call('ZSCORE', KEYS[6], id)
  if redis.call('HGET', ARGV[3] .. id, 'state') == 'queued'
      and (not stale_at or tonumber(stale_at) >= now) then
    queued[#queued + 1] = marks[i]
    queued[#queued + 1] = id
  end
end
return {pending, redis.call('ZCARD', KEYS[2]), workers,
  head(KEYS[4], tonumber(ARGV[1])), dead, string.format('%.6f', now), queued}
"""
