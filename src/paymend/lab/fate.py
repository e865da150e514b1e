"""The fate of one provider call: a pure function of the scenario, the call's draws and
the moment it is made.

The lab's providers (lab/provider.py) answer with it, and the oracle (lab/oracle.py) and
the naive checkout (lab/naive.py) replay it, so all three see the very same provider. A
call meets the scenario's faults in file order; the first one that hits decides:

- `outage`: the connection is refused, nothing is sent or booked;
- `timeout`: no answer (the call hangs); with probability `charged` the provider
  processed it anyway, and booked what the payer's truth gives (money moved for a payer
  who can pay, a decline for one who cannot);
- `error`, `rate_limit`: an error answer after the call's latency, nothing booked;
- `credentials_expired`: `TOKEN_EXPIRED` while the channel's token is expired (state of
  the channel, kept by the provider: paymend can refresh it);
- `latency`: the answer's latency follows the fault's p50 and p99 instead.

Otherwise the channel's own technical error rate may answer `SYSTEM_ERROR`, and then the
payer's truth decides: approved, declined, or 3-D Secure first. What is booked is booked
as the call arrives; the answer then takes its latency, and a caller that stops waiting
does not undo it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from paymend.lab.draws import CallDraws
from paymend.lab.scenario import Fault, Scenario
from paymend.providers.simulator import ChargeState

HANG_S = 30.0  # a hung call's connection gives up after this long
SLOW_S = 3.0  # slower than this under a latency fault: a technical symptom
DECLINES = {
    "insufficient_funds": "INSUFFICIENT_FUNDS",
    "expired_card": "EXPIRED_CARD",
    "incorrect_details": "INCORRECT_DETAILS",
    "fraud": "SUSPECTED_FRAUD",
}


class Answer(StrEnum):
    REFUSED = "refused"  # connection refused: nothing was sent
    HANG = "hang"  # no answer at all
    ERROR = "error"  # an error answer: nothing booked
    BOOKED = "booked"  # the provider's answer: what it booked


@dataclass(frozen=True, slots=True)
class Fate:
    answer: Answer
    code: str  # the raw code answered (or the transport's, for refused and hung calls)
    latency_s: float  # until the answer; HANG_S for a hung call, 0 when refused
    booked: ChargeState | None  # what the provider booked as the call arrived
    booked_code: str | None = None  # the code of that booking (a hung call's is unseen)
    fault: int | None = None  # the index of the scenario fault that decided it
    slow: bool = False  # a latency fault made it slower than any checkout waits

    @property
    def can_succeed(self) -> bool:
        """Money moved, or will once the customer completes 3-D Secure."""
        return self.booked in (ChargeState.CHARGED, ChargeState.AWAITING_AUTHENTICATION)


def lognormal_s(p50_ms: float, p99_ms: float, z: float) -> float:
    """Seconds, log-normal through p50 and p99, at the standard normal `z`."""
    if p50_ms <= 0:
        return 0.0
    sigma = max(0.0, math.log(max(p99_ms, p50_ms) / p50_ms) / 2.326)
    return math.exp(math.log(p50_ms) + sigma * z) / 1000.0


def booking(truth: str, authenticated: bool) -> tuple[ChargeState, str]:
    """What the provider books for a payer with this truth, and its raw code."""
    if truth in DECLINES:
        return ChargeState.DECLINED, DECLINES[truth]
    if truth == "needs_authentication" and not authenticated:
        return ChargeState.AWAITING_AUTHENTICATION, "AUTHENTICATION_REQUIRED"
    return ChargeState.CHARGED, "APPROVED"


class Fates:
    """The scenario's providers as pure functions of (call, draws, time)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._faults: dict[str, list[tuple[int, Fault]]] = {
            name: [
                (i, f)
                for i, f in enumerate(scenario.faults)
                if f.kind != "payer" and f.channel in (None, name)
            ]
            for name in scenario.channels
        }
        # the moments a channel's behaviour may change: fate is constant between them
        self.boundaries = sorted(
            {t for f in scenario.faults if f.kind != "payer" for t in (f.at, f.end)}
        )

    def active(
        self, channel: str, t: float, method: str | None, bank: str | None, region: str | None
    ) -> list[tuple[int, Fault]]:
        """The faults of `channel` in force at `t` for this scope (None matches any)."""
        return [
            (i, f)
            for i, f in self._faults[channel]
            if f.at <= t < f.end
            and (f.method is None or method is None or f.method == method)
            and (f.bank is None or bank is None or f.bank == bank)
            and (f.region is None or region is None or f.region == region)
        ]

    def latency_s(
        self, channel: str, active: list[tuple[int, Fault]], z: float, hits: tuple[float, ...]
    ) -> float:
        """A latency fault in force (and hitting this call) sets the p50 and p99."""
        spec = self.scenario.channels[channel].latency_ms
        p50, p99 = spec.p50, spec.p99
        for i, f in active:
            hit = not hits or hits[i] < f.rate
            if f.kind == "latency" and f.p50 is not None and f.p99 is not None and hit:
                p50, p99 = f.p50, f.p99
        return lognormal_s(p50, p99, z)

    def call(
        self,
        channel: str,
        t: float,
        method: str,
        bank: str | None,
        region: str | None,
        truth: str,
        draws: CallDraws,
        *,
        token_expired: bool = False,
        authenticated: bool = False,
    ) -> Fate:
        """The fate of an authorize call made on `channel` at `t`."""
        active = self.active(channel, t, method, bank, region)
        latency = self.latency_s(channel, active, draws.latency, draws.faults)
        for i, f in active:
            if draws.faults[i] >= f.rate:
                continue
            if f.kind == "outage":
                return Fate(Answer.REFUSED, "CONNECTION_REFUSED", 0.0, None, None, i)
            if f.kind == "timeout":
                if draws.charged < f.charged:  # processed anyway: booked, the answer lost
                    state, code = booking(truth, authenticated)
                    return Fate(Answer.HANG, "READ_TIMEOUT", HANG_S, state, code, i)
                return Fate(Answer.HANG, "READ_TIMEOUT", HANG_S, None, None, i)
            if f.kind in ("error", "rate_limit"):
                return Fate(Answer.ERROR, f.code or "RATE_LIMITED", latency, None, None, i)
            if f.kind == "credentials_expired" and token_expired:
                return Fate(Answer.ERROR, "TOKEN_EXPIRED", latency, None, None, i)
        slow = latency > SLOW_S and any(f.kind == "latency" for _, f in active)
        if draws.error < self.scenario.channels[channel].technical_error_rate:
            return Fate(Answer.ERROR, "SYSTEM_ERROR", latency, None, slow=slow)
        state, code = booking(truth, authenticated)
        return Fate(Answer.BOOKED, code, latency, state, code, slow=slow)

    def query_s(self, channel: str, t: float, z: float) -> float | None:
        """A status query's latency on `channel` at `t`; None when an outage refuses it."""
        active = self.active(channel, t, None, None, None)
        if any(f.kind == "outage" for _, f in active):
            return None
        return self.latency_s(channel, active, z, ())

    def quiet_s(self, channel: str, z: float) -> float:
        """The channel's own latency, faults aside (completing a 3-D Secure charge)."""
        spec = self.scenario.channels[channel].latency_ms
        return lognormal_s(spec.p50, spec.p99, z)
