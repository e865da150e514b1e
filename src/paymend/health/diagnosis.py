"""Where do the failures concentrate? A multi-dimensional root-cause search.

Two steps, both comparing the failures expected from a baseline window with those seen in
the anomaly window.

1. Candidates, as Adtributor picks them (Bhagwan et al., NSDI 2014): for every dimension
   (channel, method, bank, region, failure code) and each of its values, the explanatory
   power, how much of the whole excess of failures the value accounts for,
   EP = (actual - expected) / (total actual - total expected). A value is a candidate
   when EP is at least 10% and its failures are unlikely at its baseline rate (exact
   binomial tail under 0.1%).
2. Refinement, as the HotSpot family searches combinations: a fault of one channel in one
   region is neither "the channel" nor "the region". A candidate scope is narrowed by
   another dimension's value while that value's failure rate inside the scope is
   significantly above the rest of the scope's (one-sided Fisher exact test under 0.1%);
   a channel outage fails every bank alike and stays the channel.

Scopes are ranked by the evidence that their own failure rate rose: the log-likelihood
ratio (G) of their failures at the new rate against their baseline rate. G grows with the
calls at a raised rate, so it prefers the widest scope that fails alike and drops the
parts that do not fail. Share alone misleads once routing reacts: after a circuit opens
the dead channel has a handful of failing calls and the healthy channel thousands with
their usual noise; by rate, 6 failures in 30 calls on a channel that fails 0.2% of the
time leave no doubt. Places (channel, method, bank, region: what ops can route around or
pause) come before the failure code, which names the symptom. A dimension that had one
value in both windows tells nothing and is skipped; one value now but several before
(every payment moved to the backup channel) is an answer.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import compress
from typing import NamedTuple

from paymend.health.detectors import binomial_upper_tail, fisher_upper_tail

DIMENSIONS = ("channel", "method", "bank", "region", "code")
SYMPTOMS = ("code",)  # what failed rather than where: never narrowed, listed after places
EEP = 0.1  # a value must explain at least this share of the excess
PRIOR_CALLS = 20  # weight of the overall failure rate in each scope's expected rate
SIGNIFICANT = 1e-3  # a rise, or a part failing more than the rest, must be this unlikely
FOCUS = 2.0  # a part is a place of its own when it fails this many times as often


class Observation(NamedTuple):
    """One provider call: its dimensions, and whether it failed technically. (A tuple: a
    refresh makes one for each call of minutes at full traffic, and reads them often.)"""

    dims: Mapping[str, str | None]
    failed: bool
    at: float = 0.0  # when the call was made (seconds on any clock)


@dataclass(frozen=True, slots=True)
class Suspect:
    """A scope, {"channel": "sim_a", "region": "CN-North"}, and how strongly it explains
    the spike."""

    scope: Mapping[str, str]
    calls: int  # in the anomaly window
    explanatory_power: float
    surprise: float
    failures: int
    expected: float
    p_value: float = 1.0  # chance of this many failures at the scope's baseline rate
    evidence: float = 0.0  # G: log-likelihood ratio of the new rate against the baseline
    symptom: str | None = None  # the failure code searched for, when not every failure

    @property
    def label(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.scope.items())
        return where if self.symptom is None else f"{where} ({self.symptom})"


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


def _g_split(k1: int, n1: int, k2: int, n2: int) -> float:
    """G statistic of a 2x2 table: how strongly two parts' failure rates differ (it does
    not underflow where the Fisher p-value of a big difference does)."""
    k, n = k1 + k2, n1 + n2
    cells = [(k1, n1 * k / n), (n1 - k1, n1 * (n - k) / n)]
    cells += [(k2, n2 * k / n), (n2 - k2, n2 * (n - k) / n)]
    return 2 * sum(o * math.log(o / e) for o, e in cells if o > 0)


def _by_value(calls: list[Observation], dim: str) -> dict[str, list[Observation]]:
    """The calls grouped by their value of `dim` (calls without one left out)."""
    groups: dict[str, list[Observation]] = defaultdict(list)
    for o in calls:
        value = o.dims.get(dim)
        if value is not None:
            groups[value].append(o)
    return groups


def _in(o: Observation, scope: Mapping[str, str]) -> bool:
    dims = o.dims  # a loop, not all(...): asked for every call of every scope weighed
    for d, v in scope.items():  # noqa: SIM110
        if dims.get(d) != v:
            return False
    return True


def _since_onset(calls: list[Observation]) -> list[Observation]:
    """The calls from the scope's first failure on. The anomaly window opens a little
    before the signal, and routing moves traffic away after it: a part whose calls were
    mostly made before the fault began would look healthier than its siblings."""
    onset = min((o.at for o in calls if o.failed), default=None)
    return calls if onset is None else [o for o in calls if o.at >= onset]


class _Search:
    """The two windows, and the figures of any scope within them."""

    def __init__(
        self,
        base: list[Observation],
        now: list[Observation],
        excess: float | None = None,
    ) -> None:
        self.base, self.now = base, now
        self.overall = sum(o.failed for o in base) / max(1, len(base))
        # each value's baseline (failed, calls), a dimension at a time when first asked
        # (candidates ask for every value of it), and each wider scope's once: a
        # refinement asks again for its narrower scopes
        self._values: dict[str, dict[str, tuple[int, int]]] = {}
        self._counted: dict[tuple[tuple[str, str], ...], tuple[int, int]] = {}
        self.failed_now = sum(o.failed for o in now)
        self.expected_now = len(now) * self.overall
        # the anomaly window's calls of each scope asked for, by sorted scope: a narrower
        # scope is filtered from its wider one, not from the whole window again
        self._scoped: dict[tuple[tuple[str, str], ...], list[Observation]] = {(): now}
        self._kept: dict[tuple[object, ...], list[Observation]] = {}  # `_within`'s
        self.own_excess = self.failed_now - self.expected_now
        # explanatory power is a share of the whole spike, also when searching one code
        self.excess = self.own_excess if excess is None else excess

    def rate(self, scope: Mapping[str, str]) -> float:
        """The scope's baseline failure rate, shrunk toward the overall one: a channel
        that had two calls before routing moved traffic to it has no rate of its own."""
        key = tuple(sorted(scope.items()))
        if len(key) == 1:
            counted = self._of(key[0][0]).get(key[0][1], (0, 0))
        else:
            found = self._counted.get(key)
            if found is None:
                calls = [o for o in self.base if _in(o, scope)]
                found = self._counted[key] = (sum(o.failed for o in calls), len(calls))
            counted = found
        failed, n = counted
        rate = (failed + PRIOR_CALLS * self.overall) / (n + PRIOR_CALLS)
        return min(max(rate, 1e-6), 1 - 1e-6)

    def _of(self, dim: str) -> dict[str, tuple[int, int]]:
        """(failed, calls) in the baseline for each value of `dim` it holds."""
        found = self._values.get(dim)
        if found is None:
            found = self._values[dim] = _counts_by_value(self.base, dim)
        return found

    def suspect(self, scope: Mapping[str, str], calls: list[Observation]) -> Suspect:
        """The figures of `scope`, whose anomaly-window calls are `calls`."""
        k, n = sum(o.failed for o in calls), len(calls)
        rate = self.rate(scope)
        expected = n * rate
        share_p = expected / self.expected_now if self.expected_now > 0 else 0.0
        share_q = k / self.failed_now if self.failed_now > 0 else 0.0
        # no excess in the window (`rose` asks of any scope): nothing to explain
        power = (k - expected) / self.excess if self.excess > 0 else 0.0
        return Suspect(
            dict(scope),
            n,
            power,
            _js(share_p, share_q),
            k,
            expected,
            binomial_upper_tail(k, n, rate),
            _g(k, n, rate),
        )

    def candidates(self, dimensions: Sequence[str]) -> list[Suspect]:
        """Adtributor's step: single values that explain enough of the excess and whose
        failures are unlikely at their own baseline rate."""
        found = []
        for dim in dimensions:
            seen = ({o.dims.get(dim) for o in self.now} | set(self._of(dim))) - {None}
            if len(seen) < 2:
                continue  # one value always: it explains everything and tells nothing
            for value, calls in _by_value(self.now, dim).items():
                s = self.suspect({dim: value}, calls)
                if s.explanatory_power >= EEP and s.p_value <= SIGNIFICANT:
                    found.append(s)
        return found

    def refine(
        self, s: Suspect, places: Sequence[str], apart: Sequence[Mapping[str, str]] = ()
    ) -> Suspect:
        """Narrow the scope while one part of it fails significantly more than the rest,
        and widen it again where a narrowing is not needed: a part that fails no more
        than its siblings (the card calls of a channel that is down) is the channel.
        `apart`: scopes of other faults, whose calls are left out of these comparisons
        (a region's other channel failing for its own reason is no sibling to compare
        with)."""
        scope = dict(s.scope)
        for _ in range(2 * len(places)):  # each step adds or drops a dimension
            wider = self._widen(scope, apart)
            if wider is not None:
                scope = wider
                continue
            narrower = self._narrow(scope, places, apart)
            if narrower is None:
                break
            scope = narrower
        ordered = {d: scope[d] for d in places if d in scope}
        if ordered == dict(s.scope):
            return s
        return self.suspect(ordered, self.calls(ordered))

    def calls(self, scope: Mapping[str, str]) -> list[Observation]:
        """The anomaly window's calls in `scope`, in their order."""
        return self._calls(tuple(sorted(scope.items())))

    def _calls(self, key: tuple[tuple[str, str], ...]) -> list[Observation]:
        found = self._scoped.get(key)
        if found is None:
            d, v = key[-1]
            found = [o for o in self._calls(key[:-1]) if o.dims.get(d) == v]
            self._scoped[key] = found
        return found

    def _within(
        self, scope: Mapping[str, str], apart: Sequence[Mapping[str, str]]
    ) -> list[Observation]:
        """The scope's calls from its first failure on, those of `apart` left out (asked
        again and again as a refinement widens and narrows: kept)."""
        key = (tuple(sorted(scope.items())), *(tuple(sorted(a.items())) for a in apart))
        found = self._kept.get(key)
        if found is None:
            calls = self.calls(scope)
            if apart:
                calls = [o for o in calls if not any(_in(o, other) for other in apart)]
            found = self._kept[key] = _since_onset(calls)
        return found

    def _narrow(
        self, scope: dict[str, str], places: Sequence[str], apart: Sequence[Mapping[str, str]]
    ) -> dict[str, str] | None:
        """The scope and the value of another dimension whose calls hold the scope's
        failures, the most decisively, or None."""
        calls = self._within(scope, apart)
        k_all = sum(o.failed for o in calls)
        best: tuple[float, str, str] | None = None
        for dim in places:
            if dim in scope:
                continue
            for value, (k, n) in _counts_by_value(calls, dim).items():
                g = _split(k, n, k_all - k, len(calls) - n)
                if g is not None and (best is None or g > best[0]):
                    best = (g, dim, value)
        return None if best is None else {**scope, best[1]: best[2]}

    def _widen(
        self, scope: dict[str, str], apart: Sequence[Mapping[str, str]]
    ) -> dict[str, str] | None:
        """The scope without a dimension it does not need: one whose value does not hold
        the failures of the rest of the scope, or None."""
        if len(scope) < 2:
            return None
        for dim in scope:
            parent = {d: v for d, v in scope.items() if d != dim}
            calls = self._within(parent, apart)
            k = n = 0
            for o in calls:
                if o.dims.get(dim) == scope[dim]:
                    k += o.failed
                    n += 1
            if _split(k, n, sum(o.failed for o in calls) - k, len(calls) - n) is None:
                return parent
        return None


def _counts_by_value(calls: list[Observation], dim: str) -> dict[str, tuple[int, int]]:
    """(failed, calls) per value of `dim` (calls without one left out), in the order the
    values first appear. (Values counted by Counter, failures apart: a refresh counts
    minutes of calls for every dimension.)"""
    values = [o.dims.get(dim) for o in calls]
    failed = Counter(compress(values, [o.failed for o in calls]))
    return {v: (failed[v], n) for v, n in Counter(values).items() if v is not None}


def _split(k_part: int, n_part: int, k_rest: int, n_rest: int) -> float | None:
    """Whether a part of a scope (k_part failures in n_part calls) is a place of its own
    beside the rest of it: it fails significantly more than the rest (one-sided Fisher
    exact test) and at least twice as often. A region that fails 73% where the others
    fail 57% is chance among many comparisons, or one fault across the scope, not the
    place. Returns the G statistic of the split (how decisive; it does not underflow as
    p-values do), or None."""
    if n_rest == 0 or k_part * n_rest < FOCUS * k_rest * n_part:
        return None
    if fisher_upper_tail(k_part, n_part, k_rest, n_rest) > SIGNIFICANT:
        return None
    return _g_split(k_part, n_part, k_rest, n_rest)


def _only(observations: list[Observation], code: str) -> list[Observation]:
    """The calls with only the failures of `code` counted as failed."""
    return [
        Observation(o.dims, o.failed and o.dims.get("code") == code, o.at) for o in observations
    ]


def diagnose(
    baseline: Iterable[Observation],
    anomaly: Iterable[Observation],
    dimensions: Sequence[str] = DIMENSIONS,
    *,
    around: Mapping[str, str] | None = None,
) -> list[Suspect]:
    """The scopes that best explain the anomaly window's excess of failures, best first:
    places ranked by evidence, then symptoms (failure codes).

    A failure code that appears from nowhere is a sharper signal than the total (four
    expired-credential errors hide in a primary channel's usual noise), so the places are
    also searched with only each suspect code's failures; a place keeps its strongest
    evidence, and the code it was found with.

    `around`: the scope whose signal opened the incident ({"channel": "sim_a",
    "region": "CN-North"}). Two faults can overlap: a bigger one elsewhere explains more
    of the window's excess, yet says nothing of the failures this incident is about. The
    incident's scope is then a candidate too (refined like any other: widened to the bank
    when the bank fails on every channel alike), and the places that hold at least half
    of its failures come first, in their order of evidence."""
    base, now = list(baseline), list(anomaly)
    search = _Search(base, now)
    if search.excess <= 0:
        return []
    places = [d for d in dimensions if d not in SYMPTOMS]
    found = search.candidates(dimensions)
    symptoms = sorted((s for s in found if any(d in SYMPTOMS for d in s.scope)), key=_by_evidence)
    best: dict[tuple[tuple[str, str], ...], Suspect] = {}

    def keep(s: Suspect) -> None:
        key = tuple(sorted(s.scope.items()))
        if key not in best or s.evidence > best[key].evidence:
            best[key] = s

    for s in found:
        if s not in symptoms:
            keep(search.refine(s, places))
    for symptom in symptoms:
        code = symptom.scope.get("code")
        if code is None:
            continue
        only = _Search(_only(base, code), _only(now, code), search.excess)
        if only.own_excess > 0:
            for s in only.candidates(places):
                keep(replace(only.refine(s, places), symptom=code))
    own = [o for o in now if o.failed and _in(o, around)] if around else []

    def elsewhere(s: Suspect) -> bool:
        """The suspect holds less than half of the incident's own failures."""
        return 2 * sum(_in(o, s.scope) for o in own) < len(own)

    if own and around:
        scope = {d: around[d] for d in places if d in around}
        mine = search.suspect(scope, search.calls(scope))
        if mine.failures > mine.expected:
            others = [s.scope for s in best.values() if elsewhere(s)]
            keep(search.refine(mine, places, apart=others))
    ranked = sorted(best.values(), key=_by_evidence)
    ranked.sort(key=elsewhere)  # stable: in their order of evidence
    return ranked + symptoms


def rose(
    baseline: Iterable[Observation], anomaly: Iterable[Observation], scope: Mapping[str, str]
) -> bool:
    """Whether the scope's failures rose significantly above its baseline rate."""
    search = _Search(list(baseline), list(anomaly))
    s = search.suspect(scope, search.calls(scope))
    return s.failures > s.expected and s.p_value <= SIGNIFICANT


def _by_evidence(s: Suspect) -> tuple[float, int, float]:
    return (-round(s.explanatory_power, 2), -s.calls, -s.evidence)
