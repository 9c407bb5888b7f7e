"""Lua scripts for plan limits (shared.limits): each check is one atomic server-side step.

The window is found from the server's clock (`TIME`), so no caller's clock can
move it. A counter is one hash per account and limit holding the start of the window
it counts and the count: a stored start that is not the current window's reads as 0,
so a window resets by itself even if its key outlived it, and the key expires at the
window's end so nothing accumulates. Per-day metering is one hash per account and UTC
day, kept 40 days; its key is built here from a prefix because the day comes from
the server's clock (as the queue's scripts build job keys: no Redis Cluster).

A counted check stores its answer for a minute under the caller's call id, so a
transport that resends a call whose answer was lost gets that answer and counts
nothing twice (the transports may resend: shared.queue.transports).
"""
from shared.queue.scripts import _NOW

# Days since 1970-01-01 <-> a UTC calendar date (Howard Hinnant's algorithms, in
# floors: Lua has only doubles, exact here), and the [start, end) window of a kind.
CALENDAR = """
local DAY = 86400
local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end
local function day_label(days)
  return string.format('%04d-%02d-%02d', civil_from_days(days))
end
local function window(kind, t)
  if kind == 'minute' then
    local start = math.floor(t / 60) * 60
    return start, start + 60
  end
  local days = math.floor(t / DAY)
  if kind == 'day' then return days * DAY, (days + 1) * DAY end
  local y, m = civil_from_days(days)
  local next_y, next_m = y, m + 1
  if next_m > 12 then next_y, next_m = y + 1, 1 end
  return days_from_civil(y, m, 1) * DAY, days_from_civil(next_y, next_m, 1) * DAY
end
"""

# KEYS: counter, call
# ARGV: window kind (minute | day | month), maximum ('' for none), amount, usage prefix,
#       usage field (the limit's name), usage retention, call retention
# -> {allowed (1 | 0), used in the window, seconds until it resets (>= 1)}
# A refused attempt writes nothing: it neither counts nor costs memory under a flood.
# Amount 0 reads the count and writes nothing.
COUNT = _NOW + CALENDAR + """
local maximum, amount = tonumber(ARGV[2]), tonumber(ARGV[3])
local function answer(allowed, used, finish)
  return {allowed, used, math.max(1, math.ceil(finish - now))}
end
local resent = redis.call('GET', KEYS[2])
if resent then
  local used, finish = string.match(resent, '^(%d+) (%d+)$')
  return answer(1, tonumber(used), tonumber(finish))
end
local start, finish = window(ARGV[1], now)
local stored = redis.call('HMGET', KEYS[1], 'start', 'used')
local used = 0
if tonumber(stored[1]) == start then used = tonumber(stored[2]) end
if maximum and used + amount > maximum then return answer(0, used, finish) end
if amount == 0 then return answer(1, used, finish) end
used = used + amount
redis.call('HSET', KEYS[1], 'start', start, 'used', used)
redis.call('EXPIREAT', KEYS[1], finish)
local today = math.floor(now / DAY)
local day_key = ARGV[4] .. day_label(today)
redis.call('HINCRBY', day_key, ARGV[5], amount)
redis.call('EXPIREAT', day_key, (today + 1) * DAY + tonumber(ARGV[6]))
redis.call('SET', KEYS[2], string.format('%d %d', used, finish), 'EX', ARGV[7])
return answer(1, used, finish)
"""

# ARGV: usage prefix, days, field, ...
# -> {day, count per field..., day, ...}, oldest day first, today last
USAGE = _NOW + CALENDAR + """
local days, fields = tonumber(ARGV[2]), {unpack(ARGV, 3)}
local today = math.floor(now / DAY)
local out = {}
for d = today - days + 1, today do
  local label = day_label(d)
  out[#out + 1] = label
  for _, count in ipairs(redis.call('HMGET', ARGV[1] .. label, unpack(fields))) do
    out[#out + 1] = tonumber(count) or 0
  end
end
return out
"""
