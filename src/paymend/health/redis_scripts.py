"""The Lua scripts of the Redis health book (health/redis_book.py): each decision and its
state change in one atomic step, whichever process makes it."""

# KEYS: breaker hashes, then window hashes (short bucket, history bucket per key)
# ARGV: now, outcome, latency field or '', n, the n keys, settings..., latency in ms, slack
RECORD = """
local now = tonumber(ARGV[1]); local outcome = ARGV[2]; local lat = ARGV[3]
local n = tonumber(ARGV[4])
local took = ARGV[14 + n]  -- the call's latency in ms, '' when unknown
local slack = tonumber(ARGV[15 + n])  -- start times are reconstructed from latency
local started = now - (tonumber(took) or 0) / 1000  -- when the call began
local consecutive = tonumber(ARGV[5 + n]); local error_rate = tonumber(ARGV[6 + n])
local min_calls = tonumber(ARGV[7 + n]); local window_s = tonumber(ARGV[8 + n])
local probes = tonumber(ARGV[9 + n]); local max_open = tonumber(ARGV[10 + n])
local short_ttl = tonumber(ARGV[11 + n]); local long_ttl = tonumber(ARGV[12 + n])
local registry = KEYS[3 * n + 1]
local failed = (outcome == 'technical' or outcome == 'unknown')
local sec = math.floor(now)
local out = {}
for i = 1, n do
  for j, ttl in ipairs({short_ttl, long_ttl}) do
    local w = KEYS[n + 2 * (i - 1) + j]
    redis.call('HINCRBY', w, outcome, 1)
    if lat ~= '' then redis.call('HINCRBY', w, lat, 1) end
    redis.call('EXPIRE', w, ttl)
  end
  redis.call('ZADD', registry, now, ARGV[4 + i])
  local k = KEYS[i]
  if k ~= '' then
    redis.call('HINCRBY', k, 'n:' .. sec, 1)
    if failed then redis.call('HINCRBY', k, 't:' .. sec, 1) end
    redis.call('HDEL', k, 'n:' .. (sec - 120), 't:' .. (sec - 120))
    redis.call('EXPIRE', k, 86400)
    local state = redis.call('HGET', k, 'state') or 'closed'
    local row = tonumber(redis.call('HGET', k, 'row') or '0')
    if failed then
      if row == 0 then redis.call('HSET', k, 'run_since', now) end
      row = row + 1
    elseif started >= tonumber(redis.call('HGET', k, 'run_since') or '0') then
      row = 0
    end
    if outcome == 'success' then redis.call('HSET', k, 'ok_at', now) end
    redis.call('HSET', k, 'row', row)
    local moved = nil
    local after = function(field)
      return took ~= '' and started + slack >= tonumber(redis.call('HGET', k, field) or '0')
    end
    if state == 'open' then
      if redis.call('HGET', k, 'early_out') == '1' and after('last_resort_at') then
        redis.call('HSET', k, 'early_out', 0)  -- the early probe's outcome
        if not failed and probes <= 1 then
          redis.call('HSET', k, 'state', 'closed')
          moved = {'open', 'closed', '1 probe passed'}
        elseif not failed then
          redis.call('HSET', k, 'state', 'half_open', 'probing', 0, 'passed', 1)
          moved = {'open', 'half_open', 'an early probe passed'}
        end
      end
    elseif state == 'half_open' and took ~= '' and not after('probe_at') then
      moved = nil  -- a call from before the probe: not its outcome
    elseif state == 'half_open' then
      redis.call('HSET', k, 'probing', 0)
      if failed then
        local again = math.min(2 * tonumber(redis.call('HGET', k, 'open_for') or '0'), max_open)
        redis.call('HSET', k, 'state', 'open', 'opened_at', now, 'open_for', again)
        moved = {'half_open', 'open', 'a probe failed'}
      else
        local passed = redis.call('HINCRBY', k, 'passed', 1)
        if passed >= probes then
          redis.call('HSET', k, 'state', 'closed')
          moved = {'half_open', 'closed', passed .. ' probes passed'}
        end
      end
    elseif state == 'closed' and failed then
      if row >= consecutive then
        redis.call('HSET', k, 'state', 'open', 'opened_at', now, 'open_for', ARGV[13 + n])
        moved = {'closed', 'open', row .. ' technical failures in a row'}
      else
        local c = 0; local t = 0
        for s = sec - window_s + 1, sec do
          c = c + tonumber(redis.call('HGET', k, 'n:' .. s) or '0')
          t = t + tonumber(redis.call('HGET', k, 't:' .. s) or '0')
        end
        if c >= min_calls and t / c >= error_rate then
          redis.call('HSET', k, 'state', 'open', 'opened_at', now, 'open_for', ARGV[13 + n])
          local why = 'technical error rate ' .. math.floor(100 * t / c) .. '% of ' .. c .. ' calls'
          moved = {'closed', 'open', why}
        end
      end
    end
    if moved then
      table.insert(out, i); table.insert(out, moved[1])
      table.insert(out, moved[2]); table.insert(out, moved[3])
    end
  end
end
return out
"""

# ARGV: now, probe_timeout_s, last_resort (0|1), last_resort_s
# returns {allowed, before, after, why}
ALLOW = """
local k = KEYS[1]
local now = tonumber(ARGV[1]); local probe_timeout = tonumber(ARGV[2])
local state = redis.call('HGET', k, 'state') or 'closed'
if state == 'closed' then return {1} end
local moved = {}
if state == 'open' then
  local opened = tonumber(redis.call('HGET', k, 'opened_at') or '0')
  local open_for = tonumber(redis.call('HGET', k, 'open_for') or '0')
  if now - opened < open_for then
    local last = math.max(opened, tonumber(redis.call('HGET', k, 'last_resort_at') or '0'))
    if ARGV[3] == '1' and now - last >= tonumber(ARGV[4]) then
      redis.call('HSET', k, 'last_resort_at', now, 'early_out', 1)
      return {1}
    end
    return {0}
  end
  redis.call('HSET', k, 'state', 'half_open', 'probing', 0, 'passed', 0)
  moved = {'open', 'half_open', open_for .. 's open'}
end
local probing = tonumber(redis.call('HGET', k, 'probing') or '0')
local probe_at = tonumber(redis.call('HGET', k, 'probe_at') or '0')
if probing == 1 and now - probe_at < probe_timeout then return {0, unpack(moved)} end
redis.call('HSET', k, 'probing', 1, 'probe_at', now)
return {1, unpack(moved)}
"""

# ARGV: now, why, open_s
FORCE_OPEN = """
local k = KEYS[1]
local state = redis.call('HGET', k, 'state') or 'closed'
if state == 'open' then return {} end
redis.call('HSET', k, 'state', 'open', 'opened_at', ARGV[1], 'open_for', ARGV[3])
redis.call('EXPIRE', k, 86400)
return {state, 'open', ARGV[2]}
"""

# KEYS: window hashes (short bucket, history bucket per key); ARGV: the new outcome
# An unknown moves to the outcome in each bucket that still holds one.
SETTLE = """
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'unknown') or '0') > 0 then
    redis.call('HINCRBY', KEYS[i], 'unknown', -1)
    redis.call('HINCRBY', KEYS[i], ARGV[1], 1)
  end
end
return 0
"""
