"""Failover selection: the channels one payment may try, in order, around what is
blocked, and which tripped channel may still take it as a probe or a last resort.

`rank` (ranking.py) orders the channels by estimated success; this wraps it with the
circuit breakers. A channel whose circuit is open for the payment's context is skipped,
unless its breakers admit a probe (then it goes first, the healthy ranking as its
failover) or nothing else is left. Time comes in as an argument (epoch seconds, the
time every process shares through Redis), so the lab's virtual clock drives it.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from paymend.domain.channel import Capabilities
from paymend.health.book import Health
from paymend.health.breaker import BreakerState
from paymend.health.keys import amount_band, channel_key, context_keys, parse_key
from paymend.routing.ranking import PaymentContext, RoutingRules, rank

SICK_WINDOW_S, SICK_CALLS = 10.0, 10  # a channel failing half its calls for a scope is sick


@dataclass(frozen=True, slots=True)
class Routed:
    channels: tuple[str, ...]
    reason: str
    spare: Mapping[str, tuple[str, ...]]  # channel skipped for an open circuit -> its keys


def payment_keys(ctx: PaymentContext, channel: str) -> tuple[str, ...]:
    """The health keys of `channel` for this payment's context (health/keys.py)."""
    band = amount_band(ctx.amount_minor, ctx.currency)
    return context_keys(channel, ctx.method, ctx.bank, ctx.region, band)


class Router:
    """Routes payments for one merchant configuration. `breakers` False: circuits are
    not consulted (the lab's naive checkout, which knows nothing of channel health)."""

    def __init__(
        self,
        rules: RoutingRules,
        capabilities: Mapping[str, Capabilities],
        costs: Mapping[str, float],
        health: Health,
        rng: random.Random,
        *,
        breakers: bool = True,
    ) -> None:
        self.rules = rules
        self.capabilities = capabilities
        self.costs = costs
        self.health = health
        self.rng = rng  # shared with the decisions' jitter: one seed, one sequence
        self.breakers = breakers

    def route(
        self,
        ctx: PaymentContext,
        now: float,
        paused: Collection[str] = (),
        forced: str | None = None,
    ) -> Routed:
        """Rank the channels for one payment around what is blocked: channels paused by
        ops (`paused`), and circuits open for this payment's context. `forced`: the
        channel ops force first for this payment's method."""
        blocked: dict[str, str] = dict.fromkeys(paused, "paused by ops")
        tripped: dict[str, tuple[str, ...]] = {}
        if self.breakers:
            candidates = [
                (name, payment_keys(ctx, name))
                for name in self.rules.priority
                if name not in blocked
                and self.capabilities[name].supports(ctx.method, ctx.currency, ctx.region)
            ]
            # every breaker this payment could meet, read at once (one Redis round trip)
            states = iter(self.health.states([k for _, keys in candidates for k in keys]))
            for name, keys in candidates:
                open_keys = tuple(k for k in keys if next(states) is not BreakerState.CLOSED)
                if open_keys:
                    tripped[name] = open_keys
                    scope = parse_key(open_keys[0])[1]
                    where = ", ".join(f"{k}={v}" for k, v in scope.items())
                    blocked[name] = f"circuit open for {where}" if where else "circuit open"
        route = rank(
            ctx,
            self.rules,
            self.capabilities,
            self.costs,
            lambda key: self.health.stats(key, now),
            self.rng,
            blocked,
        )
        channels, reason = route.channels, route.reason
        if forced is not None and forced in channels:
            channels = (forced, *(c for c in channels if c != forced))
            reason += f"; {forced} forced by ops"
        if tripped:
            channels, reason = self._probe_or_fall_back(channels, reason, tripped, now)
        spare = {n: keys for n, keys in tripped.items() if n not in channels}
        return Routed(channels, reason, spare)

    def _probe_or_fall_back(
        self,
        channels: tuple[str, ...],
        reason: str,
        tripped: dict[str, tuple[str, ...]],
        now: float,
    ) -> tuple[tuple[str, ...], str]:
        """`tripped`: the channels that could take this payment but have a circuit open
        for it, with those circuits. One of them takes the payment first as its probe when
        its breakers admit one (one at a time, waits doubling after each failed probe);
        the healthy ranking follows as its failover. Every tripped channel is probed so,
        not only the merchant's favourite: a backup nobody prefers would otherwise stay
        shut long after its fault, and be missing when the primary breaks next. When
        every circuit is open, one try on the channel that last succeeded beats none."""
        for name, keys in tripped.items():  # in the merchant's priority order
            if all(self.health.allow(k, now) for k in keys):
                return (name, *channels), f"{reason}; probing {name} (circuit half-open)"
        if channels:
            return channels, reason
        best = max(
            tripped,
            key=lambda n: max((self.health.last_success(k) or 0.0) for k in tripped[n]),
        )
        return (best,), f"{reason}; every circuit open: trying {best}, which last succeeded"

    def last_resort(
        self,
        ctx: PaymentContext,
        failed: str,
        spare: Mapping[str, tuple[str, ...]],
        tried: Collection[str],
        now: float,
    ) -> list[str]:
        """When no healthy channel is left to fail over to: a tripped one (from `spare`),
        probed early (health/breaker.py) only when the channel that `failed` is failing
        for this payment's scope too (a blip on a healthy channel is better retried
        there), and only for a circuit of a scope on a channel that otherwise works: a
        channel down as a whole keeps its schedule."""
        sick = self.sick(ctx, failed, now)
        return [
            name
            for name, keys in spare.items()
            if name not in tried
            and all(self.health.ready(k, now, sick and channel_key(name) not in keys) for k in keys)
        ][:1]

    def sick(self, ctx: PaymentContext, channel: str, now: float) -> bool:
        """Is `channel` failing for this payment's scope: a circuit of its context not
        closed, or half its calls of the last 10 s failed (at least 10 of them)?"""
        keys = payment_keys(ctx, channel)
        if any(state is not BreakerState.CLOSED for state in self.health.states(keys)):
            return True
        for key in keys:
            seen = self.health.stats(key, now, SICK_WINDOW_S)
            if seen is not None and seen.calls >= SICK_CALLS and seen.failures * 2 >= seen.calls:
                return True
        return False

    def take_probe(self, keys: tuple[str, ...], now: float) -> bool:
        """A tripped channel chosen as the last resort must take a probe: False when
        another payment took it meanwhile."""
        return all(self.health.allow(k, now, last_resort=True) for k in keys)
