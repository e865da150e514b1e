"""The health book: a window of outcomes and a circuit breaker per key, and the log of
every breaker transition (what the lab measures detection and recovery from).

Keys name a scope (health/keys.py): a channel ("sim_a"), a channel for one method, bank,
region or amount band ("sim_a|bank=CMB"), or a bank or region across every channel
("*|bank=CMB"). Channel keys get breakers, so routing can step around one channel for
one bank; cross-channel keys only feed the detectors (pausing a bank everywhere is a
playbook's decision, not a breaker's).

Each key keeps a short window (one-second buckets, what breakers and routing read) and a
long one (ten-second buckets over half an hour, the baseline detectors compare with).
`HealthBook` keeps them in this process's memory; `RedisHealthBook` shares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import structlog

from paymend.health.breaker import Breaker, BreakerSettings, BreakerState, Transition
from paymend.health.outcomes import Outcome
from paymend.health.window import SlidingWindow, WindowStats, columns

# a logger, not logging's set-up: lines go wherever paymend.observability sends them
log = structlog.get_logger("paymend.health")
SHORT_S = 60.0
HISTORY_S = 1800.0
HISTORY_BUCKET_S = 10.0


class Health(Protocol):
    """What the engine, routing and playbooks need of a health book."""

    transitions: list[Transition]

    def record(
        self, keys: Sequence[str], now: float, outcome: Outcome, latency_ms: float | None = None
    ) -> None: ...
    def settle(self, keys: Sequence[str], at: float, outcome: Outcome) -> None: ...
    def allow(self, key: str, now: float, last_resort: bool = False) -> bool: ...
    def ready(self, key: str, now: float, last_resort: bool = False) -> bool: ...
    def state(self, key: str) -> BreakerState: ...
    def states(self, keys: Sequence[str]) -> list[BreakerState]: ...
    def stats(self, key: str, now: float, last_s: float | None = None) -> WindowStats | None: ...
    def history(
        self, key: str, now: float, last_s: float, upto_s: float = 0.0
    ) -> WindowStats | None: ...
    def keys(self) -> list[str]: ...
    def force_open(self, key: str, now: float, why: str) -> None: ...
    def last_success(self, key: str) -> float | None: ...
    def flag(self, key: str, now: float, code: str) -> None: ...
    def flagged(self, key: str) -> tuple[float, str] | None: ...
    def unaudited(self, consumer: str, limit: int = 500) -> list[tuple[str, Transition]]: ...
    def audited(self, ids: Sequence[str]) -> None: ...
    def flush(self) -> None: ...


def has_breaker(key: str) -> bool:
    """Channel keys have breakers; cross-channel ones ("*|bank=CMB") only windows."""
    return not key.startswith("*")


def log_transition(moved: Transition) -> None:
    log.warning(
        "breaker",
        key=moved.key,
        before=moved.before.value,
        after=moved.after.value,
        why=moved.why,
        at=round(moved.at, 3),
    )


class HealthBook:
    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self.breakers: dict[str, Breaker] = {}
        self.windows: dict[str, SlidingWindow] = {}
        self.histories: dict[str, SlidingWindow] = {}
        self.transitions: list[Transition] = []
        self._audited = 0  # transitions[:_audited] are in the audit log
        self._succeeded_at: dict[str, float] = {}
        self._flags: dict[str, tuple[float, str]] = {}

    def breaker(self, key: str) -> Breaker:
        found = self.breakers.get(key)
        if found is None:
            found = self.breakers[key] = Breaker(key, self.settings, window=self._window(key))
        return found

    def _window(self, key: str) -> SlidingWindow:
        found = self.windows.get(key)
        if found is None:
            found = self.windows[key] = SlidingWindow(SHORT_S)
            self.histories[key] = SlidingWindow(HISTORY_S, HISTORY_BUCKET_S)
        return found

    def flush(self) -> None:
        """Nothing waits: every record is applied at once in memory."""

    def record(
        self, keys: Sequence[str], now: float, outcome: Outcome, latency_ms: float | None = None
    ) -> None:
        i, j = columns(outcome, latency_ms)
        succeeded = outcome is Outcome.SUCCESS
        for key in keys:
            self._window(key).count(now, i, j)
            self.histories[key].count(now, i, j)
            if succeeded:
                self._succeeded_at[key] = now
            if has_breaker(key):
                self._note(self.breaker(key).judge(now, outcome, latency_ms))

    def settle(self, keys: Sequence[str], at: float, outcome: Outcome) -> None:
        """A call counted `unknown` at `at` turned out `outcome` (a status query found the
        charge): its windows count it so from now on. Breakers keep what they judged: a
        channel that did not answer in time was slow whatever it did with the charge."""
        for key in keys:
            window = self.windows.get(key)
            if window is None:
                continue
            moved = window.settle(at, outcome)  # each window on its own: the short one may
            moved = self.histories[key].settle(at, outcome) or moved  # have let it go
            if moved and outcome is Outcome.SUCCESS:
                self._succeeded_at[key] = max(self._succeeded_at.get(key, at), at)

    def allow(self, key: str, now: float, last_resort: bool = False) -> bool:
        found = self.breakers.get(key)
        if found is None:
            return True
        allowed, moved = found.allow(now, last_resort)
        self._note(moved)
        return allowed

    def ready(self, key: str, now: float, last_resort: bool = False) -> bool:
        found = self.breakers.get(key)
        return found is None or found.ready(now, last_resort)

    def state(self, key: str) -> BreakerState:
        found = self.breakers.get(key)
        return BreakerState.CLOSED if found is None else found.state

    def states(self, keys: Sequence[str]) -> list[BreakerState]:
        return [self.state(k) for k in keys]

    def stats(self, key: str, now: float, last_s: float | None = None) -> WindowStats | None:
        found = self.windows.get(key)
        return None if found is None else found.stats(now, last_s)

    def history(
        self, key: str, now: float, last_s: float, upto_s: float = 0.0
    ) -> WindowStats | None:
        found = self.histories.get(key)
        return None if found is None else found.stats(now, last_s, upto_s)

    def keys(self) -> list[str]:
        return list(self.windows)

    def force_open(self, key: str, now: float, why: str) -> None:
        self._note(self.breaker(key).force_open(now, why))

    def last_success(self, key: str) -> float | None:
        return self._succeeded_at.get(key)

    def flag(self, key: str, now: float, code: str) -> None:
        """A failure ops must hear of whatever the rates say (our credentials, our
        request, an answer we cannot read): the `ops_alert` signal."""
        self._flags[key] = (now, code)

    def flagged(self, key: str) -> tuple[float, str] | None:
        return self._flags.get(key)

    def unaudited(self, consumer: str, limit: int = 500) -> list[tuple[str, Transition]]:
        """Transitions not yet in the audit log, with ids for `audited` (one process
        here, so `consumer` does not matter)."""
        start = self._audited
        return [(str(start + i), t) for i, t in enumerate(self.transitions[start:][:limit])]

    def audited(self, ids: Sequence[str]) -> None:
        if ids:
            self._audited = max(self._audited, max(int(i) for i in ids) + 1)

    def _note(self, moved: Transition | None) -> None:
        if moved is not None:
            self.transitions.append(moved)
            log_transition(moved)
