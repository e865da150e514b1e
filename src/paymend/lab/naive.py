"""The naive checkout, replayed from the same draws as the run: what a shop without
paymend gets.

One call on the first channel paymend's ranking gives with no health knowledge (the
cheapest, then the merchant's priority), no retry, no failover, no status query, no
credential refresh, and a call that does not answer within the checkout's deadline read
as a failure. The simulated customer completes 3-D Secure, and that confirmation too
must answer within the deadline. Money the provider took while the shop told the
customer "failed" is counted as `charged_but_failed`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from paymend.domain.channel import Capabilities
from paymend.lab.arrivals import Arrival
from paymend.lab.draws import call_draws
from paymend.lab.fate import Answer, Fates
from paymend.lab.scenario import Scenario
from paymend.providers.simulator import ChargeState
from paymend.routing.ranking import PaymentContext, RoutingRules, rank


@dataclass(frozen=True, slots=True)
class NaiveResult:
    channel: str | None
    succeeded: bool
    charged_but_failed: bool


class NaiveCheckout:
    def __init__(self, scenario: Scenario, deadline_s: float) -> None:
        self.scenario = scenario
        self.deadline_s = deadline_s
        self.fates = Fates(scenario)
        self._rules = RoutingRules(tuple(scenario.routing))
        self._capabilities = {
            n: Capabilities(methods=frozenset(c.methods)) for n, c in scenario.channels.items()
        }
        self._costs = {n: c.cost_bps for n, c in scenario.channels.items()}
        self._first: dict[tuple[str, str], str | None] = {}

    def channel(self, a: Arrival) -> str | None:
        """The first channel of the ranking with no health known (the same for every
        payment of a method and region)."""
        key = (a.method, a.region)
        if key not in self._first:
            ctx = PaymentContext(a.method, self.scenario.currency, a.region, a.bank, a.amount)
            route = rank(
                ctx,
                self._rules,
                self._capabilities,
                self._costs,
                lambda _key: None,
                random.Random(0),  # noqa: S311 - only an even split would use it
            )
            self._first[key] = route.channels[0] if route.channels else None
        return self._first[key]

    def outcome(self, a: Arrival) -> NaiveResult:
        channel = self.channel(a)
        if channel is None:
            return NaiveResult(None, False, False)
        draws = call_draws(self.scenario.seed, a.n, channel, 1, len(self.scenario.faults))
        fate = self.fates.call(
            channel, a.t, a.method, a.bank, a.region, a.truth, draws, token_expired=True
        )
        charged = fate.booked is ChargeState.CHARGED
        if fate.answer is not Answer.BOOKED or fate.latency_s >= self.deadline_s:
            return NaiveResult(channel, False, charged)  # no answer in time: "failed"
        if fate.booked is ChargeState.AWAITING_AUTHENTICATION:  # the customer completes it
            in_time = self.fates.quiet_s(channel, draws.confirm) < self.deadline_s
            return NaiveResult(channel, in_time, not in_time)
        return NaiveResult(channel, charged, False)
