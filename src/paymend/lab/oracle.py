"""The oracle: whether any sequence of calls could have made a payment succeed.

Every provider call's fate is a pure function of (seed, payment, channel, attempt number
on the channel) and the moment it is made (lab/fate.py), so the oracle can replay any
plan for a payment exactly. A plan is what the engine is allowed to do:

- at most `max_attempts` authorize calls, one at a time: a call starts only once the
  previous one's outcome is known (its answer, or a status query after it);
- the first call at the arrival (the checkout calls at once), every later one within
  `settle_within_s` of it (the checkout's deadline, then the worker, which keeps going
  after it): a later call may wait for a fault to end;
- a 3-D Secure charge counts: the simulated customer completes every challenge;
- an expired credential counts as refreshed: any system may refresh it at the onset.

The j-th call on a channel always draws the j-th attempt's fate, so to reach attempt k
on channel c a plan makes k calls on c; calls on other channels in between only spend
attempts and time. So a payment is possible when, for some channel c and k up to the
limit, attempt k on c books a charge at some moment between the earliest it can start
and the end of the window (the arrival itself for the first call). The fate only changes
at fault boundaries, so those moments and the earliest start are the only ones to try.
The oracle learns an outcome as soon as the answer or a status query (its own latency)
could tell it: an upper bound on any engine, so `recovery_ratio` (engine success /
oracle success) is at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from paymend.lab.arrivals import Arrival
from paymend.lab.draws import call_draws, query_draw
from paymend.lab.fate import DECLINES, Answer, Fates
from paymend.lab.scenario import Scenario


@dataclass(frozen=True, slots=True)
class Limits:
    """The engine's limits the oracle keeps to (engine/payments.py EngineSettings)."""

    max_attempts: int = 4
    settle_within_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the payment could have succeeded, and the first way found: attempt
    `attempt` on `channel` at `at` seconds into the scenario."""

    possible: bool
    channel: str | None = None
    attempt: int | None = None
    at: float | None = None
    why_not: str | None = None  # "payer" (the bank declines) or "channels" (no plan)


class Oracle:
    def __init__(self, scenario: Scenario, limits: Limits | None = None) -> None:
        self.scenario = scenario
        self.limits = limits or Limits()
        self.fates = Fates(scenario)
        self._faults = len(scenario.faults)
        ordered = [*scenario.routing, *(c for c in scenario.channels if c not in scenario.routing)]
        self._channels = {
            m: [c for c in ordered if m in scenario.channels[c].methods] for m in scenario.methods
        }

    def verdict(self, a: Arrival) -> Verdict:
        if a.truth in DECLINES:
            return Verdict(False, why_not="payer")
        end = a.t + self.limits.settle_within_s
        channels = self._channels.get(a.method, [])
        earliest = dict.fromkeys(channels, a.t)
        for k in range(1, self.limits.max_attempts + 1):
            for c in channels:
                start = earliest[c]
                if start > end and k > 1:
                    continue
                draws = call_draws(self.scenario.seed, a.n, c, k, self._faults)
                moments = [start]  # the checkout calls at once; later calls may wait
                if k > 1:
                    moments += [b for b in self.fates.boundaries if start < b <= end]
                known = []
                for s in moments:
                    fate = self.fates.call(c, s, a.method, a.bank, a.region, a.truth, draws)
                    if fate.can_succeed:
                        return Verdict(True, c, k, s)
                    if fate.answer is Answer.REFUSED:
                        known.append(s)
                        continue
                    q = self.fates.query_s(c, s, query_draw(self.scenario.seed, a.n, c, k, 1))
                    known.append(s + (fate.latency_s if q is None else min(fate.latency_s, q)))
                earliest[c] = min(known)
        return Verdict(False, why_not="channels")
