"""The health book shared by every paymend process through Redis.

Each breaker is one Redis hash (state, when it opened, for how long, the run of
failures, the probe slot) plus per-second failure counters for its error-rate rule;
`record` and `allow` are Lua scripts, so a decision and its state change are one atomic
step whichever process makes it. Windows are hashes per key and bucket (one second for
the short window, ten for the history) that expire on their own, and a set lists the
keys. Times are epoch seconds from the caller's clock, which all processes share.

Every transition also goes to a stream that the workers read as one consumer group: a
breaker that an API process opened reaches the audit log once, through whichever worker
reads it first (a worker that dies before acknowledging leaves it to another after a
minute).

Routing reads a key's short window for every payment, so those reads are cached for a
second per process: ranking follows health within a second, like the ops controls.

Writes are batched: `record` queues a call's outcome, and the next read this process
makes (routing reads the breakers of every payment) sends the queued records first in
its own round trip, so this process always reads its own writes and a payment costs one
round trip, not two. Other processes see a record within `FLUSH_AFTER_S` (or
`FLUSH_AT` records), or at the process's next heartbeat when it has gone quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline

from paymend.health.book import HISTORY_BUCKET_S, HISTORY_S, SHORT_S, has_breaker, log_transition
from paymend.health.breaker import SLACK_S, BreakerSettings, BreakerState, Transition
from paymend.health.outcomes import Outcome
from paymend.health.redis_scripts import ALLOW, FORCE_OPEN, RECORD, SETTLE
from paymend.health.window import LATENCY_BOUNDS_MS, WindowStats, latency_bucket

AUDIT_GROUP = "audit"
STALE_MS = 60_000  # a worker that took transitions and did not acknowledge them died
STREAM_MAX = 100_000  # transitions kept in the stream (about; trimmed as it grows)
# A call's outcome waits at most this many seconds, or for this many others, before it
# is sent (unless a read of this process sends it sooner, in the read's round trip)
FLUSH_AFTER_S = 0.25
FLUSH_AT = 32
# a queued record: the health keys, its time, the script's keys and arguments
Recorded = tuple[tuple[str, ...], float, list[str], list[Any]]

_FIELDS = (
    "success",
    "business",
    "technical",
    "unknown",
    *(f"l{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1)),
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisHealthBook:
    """The `Health` interface over Redis: one breaker and one window per key for all."""

    def __init__(
        self, client: redis.Redis, settings: BreakerSettings | None = None, prefix: str = "paymend"
    ) -> None:
        self.client = client
        self.settings = settings or BreakerSettings()
        self.prefix = prefix
        self.transitions: list[Transition] = []  # the ones this process caused
        self._record = client.register_script(RECORD)
        self._allow = client.register_script(ALLOW)
        self._force = client.register_script(FORCE_OPEN)
        self._settle = client.register_script(SETTLE)
        self._cache: dict[str, tuple[float, WindowStats | None]] = {}
        self._pending: list[Recorded] = []  # records not yet sent (see `record`)
        self._stream = f"{prefix}:transitions"
        self.stale_ms = STALE_MS

    @classmethod
    def from_url(cls, url: str, settings: BreakerSettings | None = None) -> RedisHealthBook:
        return cls(redis.Redis.from_url(url), settings)

    def _breaker(self, key: str) -> str:
        return f"{self.prefix}:breaker:{key}"

    def _short(self, key: str, second: float) -> str:
        return f"{self.prefix}:win:{key}:{int(second)}"

    def _long(self, key: str, t: float) -> str:
        return f"{self.prefix}:hist:{key}:{int(t - t % HISTORY_BUCKET_S)}"

    def allow(self, key: str, now: float, last_resort: bool = False) -> bool:
        if not has_breaker(key):
            return True
        self.flush()
        s = self.settings
        answer: list[Any] = self._allow(
            keys=[self._breaker(key)],
            args=[now, s.probe_timeout_s, int(last_resort), s.last_resort_s],
        )
        if len(answer) > 1:
            self._note(key, now, answer[1:])
        return bool(answer[0])

    def record(
        self, keys: Sequence[str], now: float, outcome: Outcome, latency_ms: float | None = None
    ) -> None:
        """Queue the call's outcome; it reaches Redis with the next read this process
        makes (in the same round trip: routing reads breakers for every payment), or
        when `FLUSH_AT` are queued, or one is `FLUSH_AFTER_S` old, or at `flush()`."""
        s = self.settings
        windows = [w for k in keys for w in (self._short(k, now), self._long(k, now))]
        lat = "" if latency_ms is None else f"l{latency_bucket(latency_ms)}"
        self._pending.append(
            (
                tuple(keys),
                now,
                [
                    *(self._breaker(k) if has_breaker(k) else "" for k in keys),
                    *windows,
                    f"{self.prefix}:keys",
                ],
                [
                    *(now, outcome.value, lat, len(keys), *keys),
                    *(s.consecutive, s.error_rate, s.min_calls, int(s.window_s), s.probes),
                    *(s.max_open_s, int(SHORT_S) + 5, int(HISTORY_S + HISTORY_BUCKET_S), s.open_s),
                    "" if latency_ms is None else latency_ms,
                    SLACK_S,
                ],
            )
        )
        if len(self._pending) >= FLUSH_AT or now - self._pending[0][1] >= FLUSH_AFTER_S:
            self.flush()

    def flush(self) -> None:
        """Send the queued records now, in one round trip."""
        if self._pending:
            pipe = self.client.pipeline(transaction=False)
            self._execute(pipe, self._queue(pipe))

    def _queue(self, pipe: Pipeline) -> list[Recorded]:
        """Add the queued records to `pipe` (first: what a read in it sees includes them)."""
        queued, self._pending = self._pending, []
        for _keys, _now, script_keys, args in queued:
            self._record(keys=script_keys, args=args, client=pipe)
        return queued

    def _execute(self, pipe: Pipeline, queued: list[Recorded]) -> list[Any]:
        """Run `pipe`; note the breaker moves of its records; the rest of its answers."""
        answers = pipe.execute()
        for (keys, now, _k, _a), moved in zip(queued, answers, strict=False):
            for i in range(0, len(moved), 4):
                self._note(keys[int(moved[i]) - 1], now, moved[i + 1 : i + 4])
        return list(answers[len(queued) :])

    def settle(self, keys: Sequence[str], at: float, outcome: Outcome) -> None:
        """An unknown counted at `at` turned out `outcome`: the windows say so (the
        breakers keep what they judged, as in `HealthBook.settle`)."""
        if keys:
            self.flush()  # the unknown it settles may still be queued
            windows = [w for k in keys for w in (self._short(k, at), self._long(k, at))]
            self._settle(keys=windows, args=[outcome.value])
            for key in keys:
                self._cache.pop(key, None)

    def ready(self, key: str, now: float, last_resort: bool = False) -> bool:
        """Would `allow` admit a call now? Read-only: no probe slot is taken."""
        self.flush()
        fields = ["state", "opened_at", "open_for", "probing", "probe_at", "last_resort_at"]
        state, opened, open_for, probing, probe_at, early = self.client.hmget(
            self._breaker(key), fields
        )
        if not state or _text(state) == "closed":
            return True
        if _text(state) == "open":
            since = now - float(_text(opened or 0))
            if since >= float(_text(open_for or 0)):
                return True
            last = max(float(_text(opened or 0)), float(_text(early or 0)))
            return last_resort and now - last >= self.settings.last_resort_s
        busy = probing is not None and _text(probing) == "1"
        return not busy or now - float(_text(probe_at or 0)) >= self.settings.probe_timeout_s

    def state(self, key: str) -> BreakerState:
        return self.states([key])[0]

    def states(self, keys: Sequence[str]) -> list[BreakerState]:
        """Several breakers' states in one round trip (routing reads every breaker a
        payment could meet)."""
        pipe = self.client.pipeline(transaction=False)
        queued = self._queue(pipe)
        for key in keys:
            pipe.hget(self._breaker(key), "state")
        found = self._execute(pipe, queued)
        return [BreakerState(_text(raw)) if raw else BreakerState.CLOSED for raw in found]

    def stats(self, key: str, now: float, last_s: float | None = None) -> WindowStats | None:
        """The short window; read whole (routing) at most once a second per process."""
        if last_s is None:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < 1.0:
                return cached[1]
        span = SHORT_S if last_s is None else min(last_s, SHORT_S)
        first = int(now - span) + 1
        found = self._sum([self._short(key, s) for s in range(first, int(now) + 1)])
        if last_s is None:
            self._cache[key] = (now, found)
        return found

    def history(
        self, key: str, now: float, last_s: float, upto_s: float = 0.0
    ) -> WindowStats | None:
        b = HISTORY_BUCKET_S
        names = []
        t = now - upto_s
        while t > now - last_s:
            names.append(self._long(key, t))
            t -= b
        return self._sum(names)

    def _sum(self, names: list[str]) -> WindowStats | None:
        pipe = self.client.pipeline(transaction=False)
        queued = self._queue(pipe)
        for name in names:
            pipe.hmget(name, _FIELDS)
        row = [0] * len(_FIELDS)
        seen = False
        for values in self._execute(pipe, queued):
            for i, v in enumerate(values):
                if v is not None:
                    row[i] += int(v)
                    seen = True
        return WindowStats.from_row(row) if seen else None

    def keys(self) -> list[str]:
        self.flush()
        return sorted(_text(k) for k in self.client.zrange(f"{self.prefix}:keys", 0, -1))

    def force_open(self, key: str, now: float, why: str) -> None:
        self.flush()
        moved: list[Any] = self._force(
            keys=[self._breaker(key)], args=[now, why, self.settings.open_s]
        )
        if moved:
            self._note(key, now, moved)

    def flag(self, key: str, now: float, code: str) -> None:
        self.client.hset(self._breaker(key), mapping={"flag_at": now, "flag_code": code})
        self.client.expire(self._breaker(key), 86400)

    def flagged(self, key: str) -> tuple[float, str] | None:
        self.flush()
        at, code = self.client.hmget(self._breaker(key), ["flag_at", "flag_code"])
        return None if at is None else (float(_text(at)), _text(code))

    def last_success(self, key: str) -> float | None:
        self.flush()
        raw = self.client.hget(self._breaker(key), "ok_at")
        return float(_text(raw)) if raw else None

    def _note(self, key: str, now: float, moved: list[Any]) -> None:
        before, after, why = (_text(m) for m in moved)
        t = Transition(now, key, BreakerState(before), BreakerState(after), why)
        self.transitions.append(t)
        log_transition(t)
        fields = {"at": repr(now), "key": key, "before": before, "after": after, "why": why}
        self.client.xadd(self._stream, fields, maxlen=STREAM_MAX, approximate=True)  # type: ignore[arg-type]

    def unaudited(self, consumer: str, limit: int = 500) -> list[tuple[str, Transition]]:
        """Transitions from every process not yet audited: first those another worker
        took and never acknowledged, then new ones."""
        try:
            self.client.xgroup_create(self._stream, AUDIT_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:  # BUSYGROUP: it exists
            if "BUSYGROUP" not in str(exc):
                raise
        claimed: Any = self.client.xautoclaim(
            self._stream, AUDIT_GROUP, consumer, min_idle_time=self.stale_ms, count=limit
        )
        fresh: Any = self.client.xreadgroup(AUDIT_GROUP, consumer, {self._stream: ">"}, count=limit)
        entries = list(claimed[1]) + [e for _, batch in fresh or [] for e in batch]
        found, gone = [], []
        for entry_id, raw in entries:
            if not raw:  # trimmed from the stream while it waited
                gone.append(_text(entry_id))
                continue
            f = {_text(k): _text(v) for k, v in raw.items()}
            before, after = BreakerState(f["before"]), BreakerState(f["after"])
            t = Transition(float(f["at"]), f["key"], before, after, f["why"])
            found.append((_text(entry_id), t))
        self.audited(gone)
        return found

    def audited(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.xack(self._stream, AUDIT_GROUP, *ids)
