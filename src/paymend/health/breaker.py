"""Circuit breakers: closed -> open -> half-open (probe payments, one at a time) -> closed.

A breaker opens when its key fails technically `consecutive` times in a row, or when
technical failures reach `error_rate` of at least `min_calls` calls in the last
`window_s` seconds. Business declines never count against it, and they prove the channel
answers, so they reset the run of failures. Unknown outcomes (timeouts, lost answers)
count as failures: the channel did not answer in time.

After `open_s` it lets one probe payment through (half-open); `probes` passing probes in
a row close it, one failing probe opens it again for twice as long, up to `max_open_s`.
Probes go one at a time and the wait doubles because every probe into a dead channel is
a customer's payment that has to fail over: at 40 payments a second a four-minute outage
costs the five failures that opened the circuit plus four probes, not a probe salvo every
ten seconds. A probe that never reports back frees the slot after `probe_timeout_s`.

A payment with nowhere else to go may probe an open circuit before its wait is over, at
most once every `last_resort_s` (the engine decides when: engine/payments.py): it would
fail anyway, and a backup that recovered while its wait doubled is found within seconds,
not two minutes. When the early probe succeeds, the breaker goes half-open with that
probe counted as passed; when it fails, nothing changes (the scheduled probe stays where
it was). A probe's outcome is that of a call begun after it was admitted: a success
from a call already in flight (or a customer's 3-D Secure confirmation on the channel)
is not a passed probe.

The defaults follow common practice (resilience4j and Hystrix open after 5 to 20 failures
in a window); the lab measures them against outages and business waves (docs/lab.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from paymend.health.outcomes import Outcome
from paymend.health.window import SlidingWindow

SLACK_S = 0.01


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
    max_open_s: float = 120.0
    probes: int = 3
    probe_timeout_s: float = 10.0
    last_resort_s: float = 10.0


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
    open_for: float = 0.0  # this opening's wait before the next probe
    failures_in_a_row: int = 0
    run_since: float = 0.0  # when the run of failures began
    probing: bool = False  # a probe is out and has not reported back
    probes_passed: int = 0
    probe_at: float = 0.0
    last_resort_at: float = 0.0
    early_out: bool = False  # an early probe is out
    window: SlidingWindow = field(default_factory=lambda: SlidingWindow(60.0))

    def allow(self, now: float, last_resort: bool = False) -> tuple[bool, Transition | None]:
        """May a call go to this key now? A half-open breaker admits one probe at a time;
        an open one admits a `last_resort` call once every `last_resort_s`."""
        if self.state is BreakerState.CLOSED:
            return True, None
        moved = None
        if self.state is BreakerState.OPEN:
            if now - self.opened_at < self.open_for:
                if last_resort and self._early(now):
                    self.last_resort_at, self.early_out = now, True
                    return True, None
                return False, None
            moved = self._move(now, BreakerState.HALF_OPEN, f"{self.open_for:g}s open")
            self.probing = False
            self.probes_passed = 0
        if self.probing and now - self.probe_at < self.settings.probe_timeout_s:
            return False, moved
        self.probing = True
        self.probe_at = now
        return True, moved

    def ready(self, now: float, last_resort: bool = False) -> bool:
        """Would `allow` admit a call now? (Asks without taking the probe slot.)"""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            due = now - self.opened_at >= self.open_for
            return due or (last_resort and self._early(now))
        return not self.probing or now - self.probe_at >= self.settings.probe_timeout_s

    def _early(self, now: float) -> bool:
        return now - max(self.opened_at, self.last_resort_at) >= self.settings.last_resort_s

    def record(
        self, now: float, outcome: Outcome, latency_ms: float | None = None
    ) -> Transition | None:
        self.window.add(now, outcome, latency_ms)
        return self.judge(now, outcome, latency_ms)

    def judge(
        self, now: float, outcome: Outcome, latency_ms: float | None = None
    ) -> Transition | None:
        """Move on one outcome already added to the window. A success from a call that
        began before the run of failures did (it was in flight when the channel broke)
        says nothing about the channel now, so it does not end the run."""
        if outcome.failed:
            if self.failures_in_a_row == 0:
                self.run_since = now
            self.failures_in_a_row += 1
        elif latency_ms is None or now - latency_ms / 1000 >= self.run_since:
            self.failures_in_a_row = 0
        # when the call began (to the 10 ms: start times are reconstructed from latency)
        started = None if latency_ms is None else now - latency_ms / 1000 + SLACK_S
        if self.state is BreakerState.OPEN:
            if not self.early_out or started is None or started < self.last_resort_at:
                return None
            self.early_out = False  # the early probe's outcome
            if outcome.failed:
                return None
            moved = self._move(now, BreakerState.HALF_OPEN, "an early probe passed")
            self.probing, self.probes_passed = False, 1
            if self.probes_passed >= self.settings.probes:
                return self._move(now, BreakerState.CLOSED, "1 probe passed")
            return moved
        if self.state is BreakerState.HALF_OPEN and started is not None and started < self.probe_at:
            return None  # a call from before the probe: not its outcome
        if self.state is BreakerState.HALF_OPEN:
            self.probing = False
            if outcome.failed:
                again = min(self.open_for * 2, self.settings.max_open_s)
                return self._open(now, "a probe failed", again)
            self.probes_passed += 1
            if self.probes_passed >= self.settings.probes:
                return self._move(now, BreakerState.CLOSED, f"{self.probes_passed} probes passed")
            return None
        if self.state is BreakerState.CLOSED and outcome.failed:
            s = self.settings
            if self.failures_in_a_row >= s.consecutive:
                return self._open(now, f"{self.failures_in_a_row} technical failures in a row")
            seen = self.window.stats(now, s.window_s)
            if seen.calls >= s.min_calls and seen.failures / seen.calls >= s.error_rate:
                why = f"technical error rate {seen.failures / seen.calls:.0%} of {seen.calls} calls"
                return self._open(now, why)
        return None

    def force_open(self, now: float, why: str) -> Transition | None:
        """Open on an outside signal (a playbook); an open breaker stays as it is."""
        if self.state is BreakerState.OPEN:
            return None
        return self._open(now, why)

    def _open(self, now: float, why: str, open_for: float | None = None) -> Transition:
        self.opened_at = now
        self.open_for = self.settings.open_s if open_for is None else open_for
        return self._move(now, BreakerState.OPEN, why)

    def _move(self, now: float, state: BreakerState, why: str) -> Transition:
        before, self.state = self.state, state
        return Transition(now, self.key, before, state, why)
