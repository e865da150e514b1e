"""Where do the failures concentrate? A multi-dimensional root-cause search.

For every dimension (channel, method, bank, region, failure code) and each of its values,
compare the failures expected from a baseline window with those seen in the anomaly
window, as Adtributor does (Bhagwan et al., NSDI 2014):

- explanatory power: how much of the whole excess of failures a value accounts for,
  EP = (actual - expected) / (total actual - total expected);
- surprise: how far the value's share moved, by the Jensen-Shannon divergence of its
  expected and actual shares.

A value is a candidate when it explains at least 10% of the excess and its failures are
unlikely at its baseline rate (exact binomial tail under 0.1%). Candidates are ranked by
the evidence that the value's own failure rate rose, the log-likelihood ratio (G) of its
failures at the new rate against its baseline rate (as the HotSpot family scores a
value's deviation rather than its share; G does not underflow where p-values do).
Share alone misleads once routing reacts: after a circuit opens the dead channel has a
handful of failing calls and the healthy channel thousands of calls with their usual
noise, so by counts a method or bank that happens to carry the failing calls can look as
big as the channel; by rate, 6 failures in 30 calls on a channel that fails 0.2% of the
time leave no doubt. Places (channel, method,
bank, region: what ops can route around or pause) come before the failure code, which
names the symptom. A dimension with a single value tells nothing and is skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from paymend.health.detectors import binomial_upper_tail

DIMENSIONS = ("channel", "method", "bank", "region", "code")
EEP = 0.1  # a value must explain at least this share of the excess
PRIOR_CALLS = 20  # weight of the overall failure rate in each value's expected rate
SIGNIFICANT = 1e-3  # a candidate's rise must be at least this unlikely by chance


@dataclass(frozen=True, slots=True)
class Observation:
    """One provider call: its dimensions, and whether it failed technically."""

    dims: Mapping[str, str | None]
    failed: bool


@dataclass(frozen=True, slots=True)
class Suspect:
    dimension: str
    value: str
    explanatory_power: float
    surprise: float
    failures: int
    expected: float
    p_value: float = 1.0  # chance of this many failures at the value's baseline rate
    evidence: float = 0.0  # G: log-likelihood ratio of the new rate against the baseline


def _g(k: int, n: int, p0: float) -> float:
    """G statistic of k failures in n calls against the rate p0 (0 when not above it)."""
    if n == 0 or k <= n * p0:
        return 0.0
    g = k * math.log(k / (n * p0))
    if n > k:
        g += (n - k) * math.log((n - k) / (n * (1 - p0)))
    return 2 * g


def _js(p: float, q: float) -> float:
    """Jensen-Shannon divergence of one value's share p (expected) and q (actual)."""
    return sum(0.5 * x * math.log(2 * x / (p + q)) for x in (p, q) if x > 0)


def _count(observations: list[Observation], dim: str) -> tuple[dict[str, int], dict[str, int]]:
    calls: dict[str, int] = defaultdict(int)
    fails: dict[str, int] = defaultdict(int)
    for o in observations:
        value = o.dims.get(dim)
        if value is not None:
            calls[value] += 1
            fails[value] += o.failed
    return calls, fails


def diagnose(
    baseline: Iterable[Observation],
    anomaly: Iterable[Observation],
    dimensions: Sequence[str] = DIMENSIONS,
) -> list[Suspect]:
    base = list(baseline)
    now = list(anomaly)
    found: list[Suspect] = []
    for dim in dimensions:
        calls_now, fails_now = _count(now, dim)
        calls_base, fails_base = _count(base, dim)
        if len(calls_now) < 2:
            continue  # one value explains everything and tells nothing
        overall = sum(fails_base.values()) / max(1, sum(calls_base.values()))
        # a value's own baseline rate, shrunk toward the overall one: a channel that had
        # two calls before routing moved traffic to it has no rate of its own yet
        rate = {
            v: (fails_base[v] + PRIOR_CALLS * overall) / (calls_base[v] + PRIOR_CALLS)
            for v in calls_now
        }
        expected = {v: calls_now[v] * rate[v] for v in calls_now}
        actual_total = sum(fails_now.values())
        expected_total = sum(expected.values())
        excess = actual_total - expected_total
        if excess <= 0:
            continue
        for v in calls_now:
            ep = (fails_now[v] - expected[v]) / excess
            if ep < EEP:
                continue
            base_rate = min(max(rate[v], 1e-6), 1 - 1e-6)
            p = binomial_upper_tail(fails_now[v], calls_now[v], base_rate)
            if p > SIGNIFICANT:
                continue
            share_p = expected[v] / expected_total if expected_total > 0 else 0.0
            share_q = fails_now[v] / actual_total if actual_total > 0 else 0.0
            g = _g(fails_now[v], calls_now[v], base_rate)
            js = _js(share_p, share_q)
            found.append(Suspect(dim, v, ep, js, fails_now[v], expected[v], p, g))
    # places first, then the strongest evidence of a rise, then the larger share
    found.sort(key=lambda s: (s.dimension == "code", -s.evidence, -s.explanatory_power))
    return found
