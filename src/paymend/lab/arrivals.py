"""The scenario's payments, drawn up front: when each arrives, what it is, and the payer's
truth. They follow the scenario's Poisson rate whatever the engine does with them, so the
runner, the oracle and the naive checkout all see the same list."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from paymend.lab.scenario import PAYER_TRUTHS, Scenario


@dataclass(slots=True)
class Arrival:
    n: int
    t: float
    method: str
    region: str
    bank: str
    amount: int
    truth: str
    # filled in by the run: what the checkout answered
    payment_id: str | None = None
    status: str | None = None
    latency_s: float | None = None
    error: str | None = None


def _pick(rng: random.Random, shares: dict[str, float]) -> str:
    names = list(shares)
    return rng.choices(names, [shares[n] for n in names])[0]


def truth_at(rng: random.Random, scenario: Scenario, t: float) -> str:
    """A payer's truth drawn from the scenario's shares at `t` (a payer fault shifts them)."""
    shares = {k: getattr(scenario.payers, k) for k in PAYER_TRUTHS}
    for fault in scenario.faults:
        if fault.kind == "payer" and fault.at <= t < fault.end:
            for k in PAYER_TRUTHS:
                value = getattr(fault, k)
                if value is not None:
                    shares[k] = value
    roll = rng.random()
    for k in PAYER_TRUTHS:
        if roll < shares[k]:
            return k
        roll -= shares[k]
    return "ok"


def arrivals(scenario: Scenario) -> list[Arrival]:
    """Every payment of the scenario, in arrival order; the same for the same seed."""
    rng = random.Random(scenario.seed)  # noqa: S311 - a simulation
    lo, hi = math.log(scenario.amount.min), math.log(scenario.amount.max)
    found: list[Arrival] = []
    t = 0.0
    while True:
        t += rng.expovariate(scenario.rate)
        if t >= scenario.duration:
            return found
        found.append(
            Arrival(
                len(found),
                t,
                _pick(rng, scenario.methods),
                _pick(rng, scenario.regions),
                _pick(rng, scenario.banks),
                round(math.exp(rng.uniform(lo, hi))),
                truth_at(rng, scenario, t),
            )
        )
