"""Circuit breakers shared by every paymend process through Redis.

Each breaker is one Redis hash (state, when it opened, the run of failures, probes) plus
per-second outcome counters in the same hash; `record` and `allow` are Lua scripts, so a
decision and its state change are one atomic step whichever process makes it. Times are
epoch seconds from the caller's clock, which all processes share.
"""

from __future__ import annotations

from typing import Any

import redis

from paymend.health.breaker import BreakerSettings, BreakerState, Transition
from paymend.health.outcomes import Outcome
from paymend.observability import get_logger

log = get_logger("paymend.health")

# ARGV: now, outcome, consecutive, error_rate, min_calls, window_s, probes
_RECORD = """
local k = KEYS[1]
local now = tonumber(ARGV[1]); local outcome = ARGV[2]
local consecutive = tonumber(ARGV[3]); local error_rate = tonumber(ARGV[4])
local min_calls = tonumber(ARGV[5]); local window_s = tonumber(ARGV[6])
local probes = tonumber(ARGV[7])
local sec = math.floor(now)
redis.call('HINCRBY', k, 'n:' .. sec, 1)
if outcome == 'technical' then redis.call('HINCRBY', k, 't:' .. sec, 1) end
redis.call('HDEL', k, 'n:' .. (sec - 120), 't:' .. (sec - 120))
redis.call('EXPIRE', k, 86400)
local state = redis.call('HGET', k, 'state') or 'closed'
local row = tonumber(redis.call('HGET', k, 'row') or '0')
if outcome == 'technical' then row = row + 1 else row = 0 end
redis.call('HSET', k, 'row', row)
if state == 'half_open' then
  if outcome == 'technical' then
    redis.call('HSET', k, 'state', 'open', 'opened_at', now)
    return {'half_open', 'open', 'a probe failed'}
  end
  local passed = redis.call('HINCRBY', k, 'passed', 1)
  if passed >= probes then
    redis.call('HSET', k, 'state', 'closed')
    return {'half_open', 'closed', passed .. ' probes passed'}
  end
  return {}
end
if state == 'closed' and outcome == 'technical' then
  if row >= consecutive then
    redis.call('HSET', k, 'state', 'open', 'opened_at', now)
    return {'closed', 'open', row .. ' technical failures in a row'}
  end
  local n = 0; local t = 0
  for s = sec - window_s + 1, sec do
    n = n + tonumber(redis.call('HGET', k, 'n:' .. s) or '0')
    t = t + tonumber(redis.call('HGET', k, 't:' .. s) or '0')
  end
  if n >= min_calls and t / n >= error_rate then
    redis.call('HSET', k, 'state', 'open', 'opened_at', now)
    local why = 'technical error rate ' .. math.floor(100 * t / n) .. '% of ' .. n .. ' calls'
    return {'closed', 'open', why}
  end
end
return {}
"""

# ARGV: now, open_s, probes ; returns {allowed, before, after, why}
_ALLOW = """
local k = KEYS[1]
local now = tonumber(ARGV[1]); local open_s = tonumber(ARGV[2]); local probes = tonumber(ARGV[3])
local state = redis.call('HGET', k, 'state') or 'closed'
if state == 'closed' then return {1} end
local moved = {}
if state == 'open' then
  local opened = tonumber(redis.call('HGET', k, 'opened_at') or '0')
  if now - opened < open_s then return {0} end
  redis.call('HSET', k, 'state', 'half_open', 'sent', 0, 'passed', 0)
  moved = {'open', 'half_open', open_s .. 's open'}
end
local sent = tonumber(redis.call('HGET', k, 'sent') or '0')
if sent >= probes then
  local probe_at = tonumber(redis.call('HGET', k, 'probe_at') or '0')
  if now - probe_at < open_s then return {0, unpack(moved)} end
  redis.call('HSET', k, 'sent', 0, 'passed', 0)
end
redis.call('HINCRBY', k, 'sent', 1)
redis.call('HSET', k, 'probe_at', now)
return {1, unpack(moved)}
"""


class RedisHealthBook:
    """The HealthBook interface over Redis: one breaker per key for all processes."""

    def __init__(
        self, client: redis.Redis, settings: BreakerSettings | None = None, prefix: str = "paymend"
    ) -> None:
        self.client = client
        self.settings = settings or BreakerSettings()
        self.prefix = prefix
        self.transitions: list[Transition] = []  # the ones this process caused
        self._record = client.register_script(_RECORD)
        self._allow = client.register_script(_ALLOW)

    @classmethod
    def from_url(cls, url: str, settings: BreakerSettings | None = None) -> RedisHealthBook:
        return cls(redis.Redis.from_url(url), settings)

    def _key(self, key: str) -> str:
        return f"{self.prefix}:breaker:{key}"

    def allow(self, key: str, now: float) -> bool:
        s = self.settings
        answer: list[Any] = self._allow(keys=[self._key(key)], args=[now, s.open_s, s.probes])
        if len(answer) > 1:
            self._note(key, now, answer[1:])
        return bool(answer[0])

    def record(self, key: str, now: float, outcome: Outcome) -> None:
        s = self.settings
        moved: list[Any] = self._record(
            keys=[self._key(key)],
            args=[
                now,
                outcome.value,
                s.consecutive,
                s.error_rate,
                s.min_calls,
                int(s.window_s),
                s.probes,
            ],
        )
        if moved:
            self._note(key, now, moved)

    def state(self, key: str) -> BreakerState:
        raw = self.client.hget(self._key(key), "state")
        if not raw:
            return BreakerState.CLOSED
        return BreakerState(raw.decode() if isinstance(raw, bytes) else str(raw))

    def _note(self, key: str, now: float, moved: list[Any]) -> None:
        before, after, why = (m.decode() if isinstance(m, bytes) else str(m) for m in moved)
        t = Transition(now, key, BreakerState(before), BreakerState(after), why)
        self.transitions.append(t)
        log.warning("breaker", key=key, before=before, after=after, why=why, at=round(now, 3))
