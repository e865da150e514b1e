"""Where do the failures concentrate? A multi-dimensional root-cause search.

Adtributor (Bhagwan et al., NSDI 2014), applied to technical failures: for every
dimension (channel, method, bank, region, failure code) and each of its values, compare
the failures expected from a baseline window with those seen in the anomaly window.

- explanatory power: how much of the whole excess of failures a value accounts for,
  EP = (actual - expected) / (total actual - total expected);
- surprise: how far the value's share moved, by the Jensen-Shannon divergence of its
  expected and actual shares.

Within a dimension, values are taken by falling explanatory power while each explains
at least 10%, until together they explain at least 67%; dimensions are ranked by how few
values they need, then by their surprise, the failure code after every place (it names
the symptom; ops act on places). A dimension with a single value is skipped.
The answer is the ranked list of (dimension, value): the first
entry is the best single explanation of the spike, not a restatement of whatever alarm
fired.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

DIMENSIONS = ("channel", "method", "bank", "region", "code")
EEP = 0.1  # a value must explain at least this share of the excess
TEP = 0.67  # the chosen values of a dimension together explain at least this much
PRIOR_CALLS = 20  # weight of the overall failure rate in each value's expected rate


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


def _js(p: float, q: float) -> float:
    """Jensen-Shannon divergence of one value's share p (expected) and q (actual)."""
    return sum(0.5 * x * math.log(2 * x / (p + q)) for x in (p, q) if x > 0)


def diagnose(
    baseline: Iterable[Observation],
    anomaly: Iterable[Observation],
    dimensions: Sequence[str] = DIMENSIONS,
) -> list[Suspect]:
    base = list(baseline)
    now = list(anomaly)
    ranked: list[tuple[float, list[Suspect]]] = []
    for dim in dimensions:
        calls_now: dict[str, int] = defaultdict(int)
        fails_now: dict[str, int] = defaultdict(int)
        calls_base: dict[str, int] = defaultdict(int)
        fails_base: dict[str, int] = defaultdict(int)
        for o in now:
            value = o.dims.get(dim)
            if value is not None:
                calls_now[value] += 1
                fails_now[value] += o.failed
        for o in base:
            value = o.dims.get(dim)
            if value is not None:
                calls_base[value] += 1
                fails_base[value] += o.failed
        if len(calls_now) < 2:
            continue  # one value explains everything and tells nothing
        overall = sum(fails_base.values()) / max(1, sum(calls_base.values()))
        # a value's own baseline rate, shrunk toward the overall one: a channel that had
        # two calls before routing moved traffic to it has no rate of its own yet
        expected = {
            v: calls_now[v]
            * (fails_base[v] + PRIOR_CALLS * overall)
            / (calls_base[v] + PRIOR_CALLS)
            for v in calls_now
        }
        actual_total = sum(fails_now.values())
        expected_total = sum(expected.values())
        excess = actual_total - expected_total
        if excess <= 0:
            continue
        candidates = []
        for v in calls_now:
            ep = (fails_now[v] - expected[v]) / excess
            p = expected[v] / expected_total if expected_total > 0 else 0.0
            q = fails_now[v] / actual_total if actual_total > 0 else 0.0
            candidates.append(Suspect(dim, v, ep, _js(p, q), fails_now[v], expected[v]))
        # by explanatory power: routing moves traffic away from a sick channel, which
        # distorts shares (and so surprise) more than it distorts the excess of failures
        candidates.sort(key=lambda s: (s.explanatory_power, s.surprise), reverse=True)
        chosen: list[Suspect] = []
        explained = 0.0
        for s in candidates:
            if s.explanatory_power < EEP:
                continue
            chosen.append(s)
            explained += s.explanatory_power
            if explained >= TEP:
                break
        if chosen and explained >= TEP:
            ranked.append((sum(s.surprise for s in chosen), chosen))
    # places first (channel, method, bank, region: what ops can route around or pause),
    # then the fewest values that explain the spike, then the most surprising; the code
    # says what failed rather than where, so it comes after the places that explain it
    ranked.sort(key=lambda item: (item[1][0].dimension == "code", len(item[1]), -item[0]))
    return [s for _, chosen in ranked for s in chosen]
