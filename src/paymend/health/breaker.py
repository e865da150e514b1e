"""Circuit breakers: closed -> open -> half-open (a few probe calls) -> closed.

A breaker opens when its channel fails technically `consecutive` times in a row, or when
technical failures reach `error_rate` of at least `min_calls` calls in the last
`window_s` seconds. Business declines never count against it, and they prove the channel
answers, so they reset the run of failures. After `open_s` it lets `probes` calls through
(half-open): if they succeed it closes, if one fails it opens again.

The defaults follow common practice (resilience4j and Hystrix open after 5 to 20 failures
in a window); the lab measures them against outages and business waves (docs/lab.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from paymend.health.outcomes import Outcome
from paymend.health.window import SlidingWindow


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    consecutive: int = 5
    error_rate: float = 0.5
    min_calls: int = 20
    window_s: float = 10.0
    open_s: float = 10.0
    probes: int = 3


@dataclass(frozen=True, slots=True)
class Transition:
    at: float
    key: str
    before: BreakerState
    after: BreakerState
    why: str


@dataclass(slots=True)
class Breaker:
    key: str
    settings: BreakerSettings = field(default_factory=BreakerSettings)
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    failures_in_a_row: int = 0
    probes_sent: int = 0
    probes_passed: int = 0
    probe_at: float = 0.0
    window: SlidingWindow = field(default_factory=lambda: SlidingWindow(60.0))

    def allow(self, now: float) -> tuple[bool, Transition | None]:
        """May a call go to this channel now? A half-open breaker admits a few probes."""
        if self.state is BreakerState.CLOSED:
            return True, None
        moved = None
        if self.state is BreakerState.OPEN:
            if now - self.opened_at < self.settings.open_s:
                return False, None
            moved = self._move(now, BreakerState.HALF_OPEN, f"{self.settings.open_s:g}s open")
            self.probes_sent = self.probes_passed = 0
        if self.probes_sent >= self.settings.probes:
            if now - self.probe_at < self.settings.open_s:
                return False, moved
            self.probes_sent = self.probes_passed = 0  # probes that never reported back
        self.probes_sent += 1
        self.probe_at = now
        return True, moved

    def record(self, now: float, outcome: Outcome) -> Transition | None:
        self.window.add(now, outcome)
        if outcome is Outcome.TECHNICAL:
            self.failures_in_a_row += 1
        else:
            self.failures_in_a_row = 0
        if self.state is BreakerState.HALF_OPEN:
            if outcome is Outcome.TECHNICAL:
                return self._open(now, "a probe failed")
            self.probes_passed += 1
            if self.probes_passed >= self.settings.probes:
                return self._move(now, BreakerState.CLOSED, f"{self.probes_passed} probes passed")
            return None
        if self.state is BreakerState.CLOSED and outcome is Outcome.TECHNICAL:
            s = self.settings
            if self.failures_in_a_row >= s.consecutive:
                return self._open(now, f"{self.failures_in_a_row} technical failures in a row")
            counts = self.window.counts(now, s.window_s)
            calls = sum(counts.values())
            if calls >= s.min_calls and counts[Outcome.TECHNICAL] / calls >= s.error_rate:
                rate = counts[Outcome.TECHNICAL] / calls
                return self._open(now, f"technical error rate {rate:.0%} of {calls} calls")
        return None

    def _open(self, now: float, why: str) -> Transition:
        self.opened_at = now
        return self._move(now, BreakerState.OPEN, why)

    def _move(self, now: float, state: BreakerState, why: str) -> Transition:
        before, self.state = self.state, state
        return Transition(now, self.key, before, state, why)
