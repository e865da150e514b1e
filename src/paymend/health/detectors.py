"""Detectors: has a key's recent window gone wrong compared with its own baseline?

Each detector is a pure function of two windows (`recent`, and a longer `baseline` that
precedes it) and returns a `Signal` that says what it saw and why it fired or did not.
Every detector needs a minimum volume before it tests anything, and fires only when two
things hold: the change is statistically significant (p < `alpha`, from an exact tail,
never a normal approximation) AND it is large enough to act on (an absolute rate, a drop in
points, a latency ratio, a traffic ratio). Significance alone fires on tiny real changes
at high volume; size alone fires on noise at low volume.

Business declines are the payer's, never the channel's: rates are over `answered` calls
(success + technical + unknown). Only traffic counts every call.

The defaults come from `bench/detectors.py`, which simulates healthy and faulty traffic
and measures false alarms per check and seconds to detect (docs/health.md, Detectors).
The tails are written out with `math.lgamma`: no scipy in the core.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from paymend.health.window import LATENCY_BOUNDS_MS, WindowStats

_NEGLIGIBLE = 1e-17  # a term this much smaller than the sum cannot move it


@dataclass(frozen=True, slots=True)
class Signal:
    """What one detector saw in one check of one key."""

    name: str  # "error_spike" | "success_drop" | "latency_spike" | "traffic_drop"
    value: float  # the observed figure: error rate, success rate, p95 ms, calls/s
    baseline: float | None  # the same figure in the key's baseline, if it has one
    calls: int  # the volume the test was made on
    p_value: float  # 1.0 when not tested (too little volume)
    fired: bool
    why: str  # one plain sentence for the console, the log and the incident


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """Thresholds of the four detectors; the defaults are calibrated in bench/detectors.py
    for false alarms under 1 in 10,000 checks per key (docs/health.md)."""

    alpha: float = 1e-5
    """Significance of every test. An exact test false-alarms at most alpha per check on a
    key that behaves as its null says (for the error tests the worst case is a key sitting
    right at the floor), so the four together stay under 4e-5, inside the 1e-4 aim."""
    error_min_calls: int = 10
    """Answered calls needed before the error rate is tested (half a second at 20/s)."""
    error_floor: float = 0.02
    """The error rate tested against is never below this: a spotless baseline (0 errors)
    would otherwise make two timeouts a "spike"."""
    error_threshold: float = 0.1
    """The recent error rate must also reach this: at volume, 3% against a 0.3% baseline
    is significant but is not worth rerouting for. 20% caught a 20% error rate two seconds
    later (the window still holds healthy seconds), for no fewer false alarms."""
    success_min_calls: int = 20
    """Answered calls needed in the recent window."""
    success_baseline_min_calls: int = 100
    """Answered calls needed in the baseline for it to be 'the key's own' success rate."""
    success_min_drop: float = 0.1
    """Fire only when the success rate fell by at least this many points (0.1 = 10 pp)."""
    latency_min_calls: int = 20
    """Recent calls with a latency needed before p95 is tested."""
    latency_baseline_min_calls: int = 100
    """Baseline calls with a latency needed for a baseline p95 (5 calls lie above it)."""
    latency_ratio: float = 2.0
    """Recent p95 must be at least this multiple of the baseline p95."""
    latency_floor_ms: float = 500.0
    """...and at least this: 40 ms -> 120 ms is a ratio of 3 that no payer notices."""
    traffic_min_expected: float = 20.0
    """Expected calls in the recent window needed before a drop can be told from chance."""
    traffic_drop_ratio: float = 0.4
    """Fire only below this share of the expected calls: real traffic swings more than a
    Poisson process, so significance alone fires on ordinary lulls. At 20 calls/s with a
    10% wander, 0.5 false-alarmed 8 times in 320,000 checks and 0.4 never; 0.4 costs a
    second on a 70% drop."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {self.alpha}")
        for name in ("error_floor", "error_threshold", "success_min_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if not 0.0 < self.traffic_drop_ratio <= 1.0:
            raise ValueError(f"traffic_drop_ratio must be in (0, 1], not {self.traffic_drop_ratio}")
        if self.latency_ratio < 1.0:
            raise ValueError(f"latency_ratio must be at least 1, not {self.latency_ratio}")


DEFAULT_SETTINGS = DetectorSettings()


# -- exact tails --------------------------------------------------------------------------
#
# Each tail is summed from its largest term outward: the first term in log space (lgamma),
# the next ones by the ratio of neighbouring terms. The three distributions are
# log-concave, so past the mode every ratio is below 1 and the sum stops as soon as a
# term can no longer change it: a few dozen terms whatever the volume. A tail that would
# have to climb to the mode is taken as 1 minus the other side, which then falls.


def _log_choose(a: int, b: int) -> float:
    return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)


def _outward(log_first: float, ratio: Callable[[int], float], start: int, stop: int) -> float:
    """exp(log_first) * (1 + r(start) + r(start) r(start+step) + ...), i running from
    `start` towards `stop` (inclusive); each ratio must be at most 1."""
    step = 1 if stop >= start else -1
    total = term = 1.0
    for i in range(start, stop + step, step):
        term *= ratio(i)
        total += term
        if term < _NEGLIGIBLE * total:
            break
    return min(1.0, math.exp(log_first + math.log(total)))


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how likely k or more failures of n are by chance."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    q, log_p, log_q = 1.0 - p, math.log(p), math.log1p(-p)

    def log_pmf(i: int) -> float:
        return _log_choose(n, i) + i * log_p + (n - i) * log_q

    if k >= (n + 1) * p - 1:  # at or past the mode: terms fall from k up to n
        return _outward(log_pmf(k), lambda i: (n - i) * p / ((i + 1) * q), k, n - 1)
    below = _outward(log_pmf(k - 1), lambda i: i * q / ((n - i + 1) * p), k - 1, 1)
    return max(0.0, 1.0 - below)


def poisson_lower_tail(k: int, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam): how likely so few calls are by chance."""
    if k < 0:
        return 0.0
    if lam <= 0.0:
        return 1.0
    log_lam = math.log(lam)

    def log_pmf(i: int) -> float:
        return -lam + i * log_lam - math.lgamma(i + 1)

    if k <= lam:  # at or below the mode: terms fall from k down to 0
        return _outward(log_pmf(k), lambda i: i / lam, k, 1)
    # Past the mode: 1 - P(X > k), whose terms fall from k + 1 upward (no end to reach).
    above = _outward(log_pmf(k + 1), lambda i: lam / (i + 1), k + 1, k + 10**9)
    return max(0.0, 1.0 - above)


def fisher_upper_tail(k_recent: int, n_recent: int, k_base: int, n_base: int) -> float:
    """One-sided Fisher exact test: P(recent holds k_recent or more of all the failures)
    when both windows share one failure rate (the hypergeometric upper tail)."""
    total, failures = n_recent + n_base, k_recent + k_base
    n, good = n_recent, total - failures
    lowest, top = max(0, n - good), min(n, failures)
    if k_recent <= lowest:
        return 1.0
    if k_recent > top:
        return 0.0
    log_all = _log_choose(total, n)

    def log_pmf(i: int) -> float:
        return _log_choose(failures, i) + _log_choose(good, n - i) - log_all

    def up(i: int) -> float:
        return (failures - i) * (n - i) / ((i + 1) * (good - n + i + 1))

    def down(i: int) -> float:
        return i * (good - n + i) / ((failures - i + 1) * (n - i + 1))

    if k_recent >= (n + 1) * (failures + 1) / (total + 2) - 1:
        return _outward(log_pmf(k_recent), up, k_recent, top - 1)
    return max(0.0, 1.0 - _outward(log_pmf(k_recent - 1), down, k_recent - 1, lowest + 1))


# -- detectors ----------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.1%}".replace(".0%", "%")  # 0.3%, 62.5%, 99.7%, 100%


def _p(p: float) -> str:
    """ "p=0.0034", "p=6e-39"; an exact tail beyond floats reads "p<1e-300"."""
    if p >= 0.001:
        return f"p={p:.2g}"
    if p < 1e-300:
        return "p<1e-300"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"p={mantissa}e{int(exponent)}"


def _rate(x: float) -> str:
    return f"{x:.3g}" if x < 1000 else f"{x:,.0f}"


def _too_few(name: str, value: float, baseline: float | None, calls: int, why: str) -> Signal:
    return Signal(name, value, baseline, calls, 1.0, False, why)


def _verdict(
    name: str,
    value: float,
    baseline: float | None,
    calls: int,
    p: float,
    seen: str,
    s: DetectorSettings,
    *sizes: tuple[bool, str],
    unlikely: str = ", not significant",
) -> Signal:
    """Fire when the test is significant and every size check holds; otherwise `seen`
    says why not: the test, or the first size check that failed."""
    if p >= s.alpha:
        return Signal(name, value, baseline, calls, p, False, seen + unlikely)
    for holds, why_not in sizes:
        if not holds:
            return Signal(name, value, baseline, calls, p, False, seen + why_not)
    return Signal(name, value, baseline, calls, p, True, seen)


def error_spike(
    recent: WindowStats, baseline: WindowStats, s: DetectorSettings = DEFAULT_SETTINGS
) -> Signal:
    """Technical failures (and unknowns) among the recent answered calls, tested by the
    exact binomial tail against max(baseline error rate, floor); fires only above
    `error_threshold` too. A noisy small baseline can only raise the bar, never lower it."""
    n, k = recent.answered, recent.failures
    rate = recent.error_rate
    base = baseline.error_rate if baseline.answered else None
    if n < s.error_min_calls:
        return _too_few("error_spike", rate, base, n, f"too few calls ({n} < {s.error_min_calls})")
    null = max(base or 0.0, s.error_floor)
    p = binomial_upper_tail(k, n, null)
    seen = (
        f"technical error rate {_pct(rate)} of {n} calls vs "
        f"{'no' if base is None else _pct(base)} baseline ({_p(p)})"
    )
    return _verdict(
        "error_spike",
        rate,
        base,
        n,
        p,
        seen,
        s,
        (rate >= s.error_threshold, f", under the {_pct(s.error_threshold)} threshold"),
        unlikely=f", not significant against {_pct(null)}",
    )


def success_drop(
    recent: WindowStats, baseline: WindowStats, s: DetectorSettings = DEFAULT_SETTINGS
) -> Signal:
    """The success rate fell below the key's own baseline: a one-sided two-proportion test
    (Fisher's exact test: with failures as rare as 0.3% the normal approximation fails;
    against 18 failures in 5,818 calls, a pooled z test calls 2 failures in 20 calls
    p=3e-14 where the exact chance is 2e-3), and by at least `success_min_drop` points so
    that a tiny real dip at high volume does not fire."""
    n, base_n = recent.answered, baseline.answered
    rate = recent.success_rate
    base = baseline.success_rate if base_n else None
    if n < s.success_min_calls:
        return _too_few(
            "success_drop", rate, base, n, f"too few calls ({n} < {s.success_min_calls})"
        )
    if base is None or base_n < s.success_baseline_min_calls:
        return _too_few(
            "success_drop",
            rate,
            base,
            n,
            f"too few calls in the baseline ({base_n} < {s.success_baseline_min_calls})",
        )
    p = fisher_upper_tail(recent.failures, n, baseline.failures, base_n)
    drop = base - rate
    seen = f"success rate {_pct(rate)} of {n} calls vs {_pct(base)} baseline ({_p(p)})"
    small = f", a drop under {s.success_min_drop * 100:g} points"
    return _verdict("success_drop", rate, base, n, p, seen, s, (drop >= s.success_min_drop, small))


def latency_spike(
    recent: WindowStats, baseline: WindowStats, s: DetectorSettings = DEFAULT_SETTINGS
) -> Signal:
    """Recent p95 at least `latency_ratio` times the baseline p95 and over
    `latency_floor_ms`, tested by the share of recent calls above the baseline p95 against
    the 5% expected. The cut is taken at the upper bound of the histogram bucket holding
    the baseline p95, so the count is exact and at most 5% of the baseline lies above it:
    the test errs on the side of not firing."""
    n, base_n = sum(recent.latency), sum(baseline.latency)
    p95 = recent.latency_quantile(0.95)
    base = baseline.latency_quantile(0.95)
    value = p95 if p95 is not None else 0.0
    if n < s.latency_min_calls:
        return _too_few(
            "latency_spike", value, base, n, f"too few calls ({n} < {s.latency_min_calls})"
        )
    if base is None or base_n < s.latency_baseline_min_calls:
        return _too_few(
            "latency_spike",
            value,
            base,
            n,
            f"too few calls in the baseline ({base_n} < {s.latency_baseline_min_calls})",
        )
    cut = bisect_left(LATENCY_BOUNDS_MS, base)  # the bucket holding the baseline p95
    above = sum(recent.latency[cut + 1 :])
    bound = LATENCY_BOUNDS_MS[min(cut, len(LATENCY_BOUNDS_MS) - 1)]
    p = binomial_upper_tail(above, n, 0.05)
    ratio = value / base if base > 0 else math.inf
    seen = (
        f"p95 latency {value:.0f} ms of {n} calls vs {base:.0f} ms baseline, "
        f"{_pct(above / n)} of calls over {bound:g} ms ({_p(p)})"
    )
    return _verdict(
        "latency_spike",
        value,
        base,
        n,
        p,
        seen,
        s,
        (ratio >= s.latency_ratio, f", under {s.latency_ratio:g}x the baseline"),
        (value >= s.latency_floor_ms, f", under the {s.latency_floor_ms:g} ms floor"),
    )


def traffic_drop(
    recent: WindowStats,
    baseline: WindowStats,
    recent_s: float,
    baseline_s: float,
    s: DetectorSettings = DEFAULT_SETTINGS,
) -> Signal:
    """Calls per second fell: the recent count k against the λ = baseline rate × recent_s
    a steady key would see, by the Poisson lower tail P(X <= k), and below
    `traffic_drop_ratio` of λ. Every call counts here, declines included: a payer who is
    declined still reached the channel."""
    if recent_s <= 0 or baseline_s <= 0:
        raise ValueError(f"window lengths must be positive, not {recent_s} and {baseline_s}")
    k = recent.calls
    rate, base = k / recent_s, baseline.calls / baseline_s
    lam = base * recent_s
    if lam < s.traffic_min_expected:
        return _too_few(
            "traffic_drop",
            rate,
            base,
            k,
            f"too few calls ({lam:.1f} expected < {s.traffic_min_expected:g})",
        )
    p = poisson_lower_tail(k, lam)
    seen = (
        f"traffic {_rate(rate)} calls/s ({k} calls) vs {_rate(base)}/s baseline, "
        f"{_pct(k / lam)} of expected ({_p(p)})"
    )
    small = f", above {_pct(s.traffic_drop_ratio)} of expected"
    return _verdict(
        "traffic_drop", rate, base, k, p, seen, s, (k < s.traffic_drop_ratio * lam, small)
    )


def detect(
    recent: WindowStats,
    baseline: WindowStats,
    recent_s: float,
    baseline_s: float,
    s: DetectorSettings = DEFAULT_SETTINGS,
) -> list[Signal]:
    """All four detectors on one key, in a fixed order (fired or not, for the record)."""
    return [
        error_spike(recent, baseline, s),
        success_drop(recent, baseline, s),
        latency_spike(recent, baseline, s),
        traffic_drop(recent, baseline, recent_s, baseline_s, s),
    ]
