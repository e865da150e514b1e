"""Detectors: fire on a clear fault, stay quiet on noise, never on business declines, and
test nothing without volume. The exact tails match sums computed here independently."""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from math import comb, factorial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymend.health.detectors import (
    DEFAULT_SETTINGS,
    DetectorSettings,
    binomial_upper_tail,
    detect,
    error_spike,
    fisher_upper_tail,
    latency_spike,
    poisson_lower_tail,
    success_drop,
    traffic_drop,
)
from paymend.health.window import LATENCY_BOUNDS_MS, WindowStats, latency_bucket

ALPHA = DEFAULT_SETTINGS.alpha


def window(
    success: int = 0,
    business: int = 0,
    technical: int = 0,
    unknown: int = 0,
    latencies: Iterable[tuple[float, int]] = (),
) -> WindowStats:
    """A window with these outcomes; `latencies` is (ms, how many calls) pairs."""
    buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for ms, n in latencies:
        buckets[latency_bucket(ms)] += n
    return WindowStats(success, business, technical, unknown, tuple(buckets))


# A healthy key over five minutes at 20 calls/s: 0.3% technical errors, 3% declines,
# p95 latency around 570 ms.
BASELINE = window(
    success=5800,
    business=180,
    technical=18,
    latencies=[(90, 300), (180, 2100), (280, 2100), (450, 900), (700, 450), (1000, 148)],
)
BASELINE_S = 300.0


def healthy_recent(scale: int = 1) -> WindowStats:
    """Five seconds of the same key behaving as usual."""
    return window(
        success=97 * scale,
        business=3 * scale,
        latencies=[(90, 5 * scale), (180, 35 * scale), (280, 35 * scale), (450, 15 * scale),
                   (700, 8 * scale), (1000, 2 * scale)],
    )  # fmt: skip


# -- exact tails against direct sums --------------------------------------------------------


def binomial_by_sum(k: int, n: int, p: Fraction) -> float:
    return float(sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(max(k, 0), n + 1)))


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 40])
@pytest.mark.parametrize("p", [Fraction(1, 1000), Fraction(1, 50), Fraction(1, 20), Fraction(1, 2),
                               Fraction(9, 10)])  # fmt: skip
def test_the_binomial_tail_is_the_sum_of_its_terms(n: int, p: Fraction) -> None:
    for k in range(-1, n + 2):
        expected = binomial_by_sum(k, n, p)
        assert binomial_upper_tail(k, n, float(p)) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_the_binomial_tail_at_known_points() -> None:
    # Four or more failures in 10 calls of a channel at the 2% floor.
    assert binomial_upper_tail(4, 10, 0.02) == pytest.approx(
        1 - sum(comb(10, i) * 0.02**i * 0.98 ** (10 - i) for i in range(4)), rel=1e-9
    )
    assert binomial_upper_tail(10, 10, 0.5) == pytest.approx(0.5**10, rel=1e-12)  # all of them
    assert binomial_upper_tail(1, 1000, 0.02) == pytest.approx(1 - 0.98**1000, rel=1e-12)
    assert binomial_upper_tail(1000, 1000, 0.02) == pytest.approx(
        math.exp(1000 * math.log(0.02)), rel=1e-9
    )


def test_binomial_edges() -> None:
    assert binomial_upper_tail(0, 10, 0.3) == 1.0
    assert binomial_upper_tail(11, 10, 0.3) == 0.0
    assert binomial_upper_tail(1, 10, 0.0) == 0.0
    assert binomial_upper_tail(10, 10, 1.0) == 1.0
    assert binomial_upper_tail(0, 0, 0.5) == 1.0


def poisson_by_sum(k: int, lam: int | Decimal) -> float:
    """exp(-lam) * sum(lam^i / i!) in 60-digit decimals: no lgamma, no underflow."""
    with localcontext() as ctx:
        ctx.prec = 60
        lam = Decimal(lam)
        series = sum(lam**i / Decimal(factorial(i)) for i in range(k + 1))
        return float((-lam).exp() * series)


@pytest.mark.parametrize("lam", [1, 3, 20, 100, 1000])
def test_the_poisson_tail_is_the_sum_of_its_terms(lam: int) -> None:
    for k in sorted({0, 1, lam // 4, lam // 2, lam - 1, lam, lam + 1, 2 * lam}):
        expected = poisson_by_sum(k, lam)
        assert poisson_lower_tail(k, float(lam)) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_poisson_edges() -> None:
    assert poisson_lower_tail(0, 20.0) == pytest.approx(math.exp(-20), rel=1e-12)
    assert poisson_lower_tail(-1, 20.0) == 0.0
    assert poisson_lower_tail(0, 0.0) == 1.0
    assert poisson_lower_tail(10**6, 100.0) == 1.0


def fisher_by_sum(k: int, n: int, kb: int, nb: int) -> float:
    total, failures = n + nb, k + kb
    tail = sum(comb(failures, i) * comb(total - failures, n - i) for i in range(k, n + 1))
    return float(Fraction(tail, comb(total, n)))


@pytest.mark.parametrize(("n", "nb"), [(1, 1), (5, 7), (20, 30), (20, 600), (40, 9)])
def test_the_fisher_tail_is_the_hypergeometric_sum(n: int, nb: int) -> None:
    for kb in sorted({0, 1, nb // 10, nb // 2, nb}):
        for k in range(n + 1):
            expected = fisher_by_sum(k, n, kb, nb)
            got = fisher_upper_tail(k, n, kb, nb)
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


@given(n=st.integers(0, 400), p=st.floats(0.0, 1.0))
def test_binomial_tail_is_a_probability_falling_in_k(n: int, p: float) -> None:
    tails = [binomial_upper_tail(k, n, p) for k in range(n + 2)]
    assert all(0.0 <= t <= 1.0 for t in tails)
    # Sums of fewer terms: never larger (up to rounding where the tail is close to 1).
    assert all(b <= a + 1e-12 for a, b in pairwise(tails))


@given(k=st.integers(0, 300), n=st.integers(1, 300), p=st.floats(0.0, 0.99), dp=st.floats(0, 0.01))
def test_binomial_tail_grows_with_the_rate(k: int, n: int, p: float, dp: float) -> None:
    assert binomial_upper_tail(k, n, p) <= binomial_upper_tail(k, n, p + dp) + 1e-12


@given(lam=st.floats(0.0, 2000.0), k=st.integers(0, 3000), dlam=st.floats(0.0, 5.0))
def test_poisson_tail_is_a_probability_growing_in_k_falling_in_lambda(
    lam: float, k: int, dlam: float
) -> None:
    p = poisson_lower_tail(k, lam)
    assert 0.0 <= p <= 1.0
    assert poisson_lower_tail(k + 1, lam) >= p - 1e-12
    assert poisson_lower_tail(k, lam + dlam) <= p + 1e-12


# -- error_spike -------------------------------------------------------------------------


def test_an_error_spike_fires_and_says_why() -> None:
    recent = window(success=18, business=2, technical=30)
    s = error_spike(recent, BASELINE)
    assert s.fired and s.name == "error_spike"
    assert s.calls == 48 and s.value == pytest.approx(30 / 48)
    assert s.baseline == pytest.approx(18 / 5818)
    expected = binomial_by_sum(30, 48, Fraction(1, 50))  # tested against the 2% floor
    assert s.p_value == pytest.approx(expected, rel=1e-9, abs=0) and s.p_value < 1e-20
    assert s.why.startswith("technical error rate 62.5% of 48 calls vs 0.3% baseline (p=")


def test_normal_noise_is_no_spike() -> None:
    for failures in range(4):  # a few stray timeouts among 100 calls
        recent = window(success=97 - failures, business=3, technical=failures)
        s = error_spike(recent, BASELINE)
        assert not s.fired and s.p_value > ALPHA
        assert "not significant" in s.why


def test_unknown_outcomes_count_as_failures() -> None:
    recent = window(success=20, unknown=20)
    assert error_spike(recent, BASELINE).fired


def test_error_spike_needs_ten_answered_calls() -> None:
    nine = error_spike(window(business=50, technical=9), BASELINE)
    assert not nine.fired and nine.p_value == 1.0 and nine.calls == 9
    assert nine.why == "too few calls (9 < 10)"
    assert error_spike(window(technical=10), BASELINE).fired


def test_a_spotless_baseline_does_not_make_two_timeouts_a_spike() -> None:
    spotless = window(success=6000)
    s = error_spike(window(success=8, technical=2), spotless)  # 20%, tested against 2%
    assert not s.fired
    assert s.p_value == pytest.approx(binomial_by_sum(2, 10, Fraction(1, 50)), rel=1e-9, abs=0)


def test_a_clean_baseline_is_tested_against_the_floor() -> None:
    s = error_spike(window(success=90, technical=10), BASELINE)  # 10% vs 0.3% baseline
    assert s.p_value == pytest.approx(binomial_by_sum(10, 100, Fraction(1, 50)), rel=1e-9, abs=0)
    assert s.p_value > ALPHA and not s.fired  # against 0.3% it would be p=1e-12


def test_a_key_without_history_is_tested_against_the_floor() -> None:
    s = error_spike(window(success=5, technical=15), WindowStats())
    assert s.fired and s.baseline is None and "vs no baseline" in s.why


def test_the_keys_own_error_rate_raises_the_bar() -> None:
    recent = window(success=65, technical=35)  # 35%
    always_flaky = window(success=4200, technical=1800)  # a 30% key
    assert not error_spike(recent, always_flaky).fired
    assert error_spike(recent, BASELINE).fired


def test_a_significant_but_small_rise_is_under_the_threshold() -> None:
    recent = window(success=4800, technical=200)  # 4% of 5000: p tiny, but small
    s = error_spike(recent, BASELINE)
    assert s.p_value < ALPHA and not s.fired
    assert "under the 10% threshold" in s.why


@given(
    answered=st.integers(10, 300),
    share=st.floats(0.0, 1.0),
    base_fail=st.integers(0, 3000),
)
def test_error_spike_p_value_falls_as_failures_rise(
    answered: int, share: float, base_fail: int
) -> None:
    baseline = window(success=6000 - base_fail, technical=base_fail)
    k = round(share * answered)
    p = [
        error_spike(window(success=answered - j, technical=j), baseline).p_value
        for j in (k, min(k + 1, answered))
    ]
    assert 0.0 <= p[1] <= p[0] + 1e-12 <= 1.0 + 1e-12


# -- success_drop ------------------------------------------------------------------------


def test_a_success_drop_fires_against_the_keys_own_rate() -> None:
    s = success_drop(window(success=80, business=3, technical=20), BASELINE)
    assert s.fired and s.value == pytest.approx(0.8) and s.calls == 100
    assert s.baseline == pytest.approx(5800 / 5818)
    assert s.p_value == pytest.approx(fisher_by_sum(20, 100, 18, 5818), rel=1e-9, abs=0)
    assert s.why.startswith("success rate 80% of 100 calls vs 99.7% baseline (p=")


def test_noise_is_no_success_drop() -> None:
    s = success_drop(window(success=98, technical=2), BASELINE)  # 98% vs 99.7%
    assert not s.fired and s.p_value > ALPHA


def test_a_tiny_real_dip_at_volume_is_not_a_drop() -> None:
    recent = window(success=98_500, technical=1_500)  # 98.5% of 100k: real, 1.2 points
    s = success_drop(recent, BASELINE)
    assert s.p_value < ALPHA and not s.fired
    assert "drop under 10 points" in s.why


def test_success_drop_needs_volume_in_both_windows() -> None:
    few = success_drop(window(success=5, business=30, technical=14), BASELINE)
    assert not few.fired and few.p_value == 1.0 and few.why == "too few calls (19 < 20)"
    young = success_drop(window(success=10, technical=40), window(success=99))
    assert not young.fired and young.p_value == 1.0
    assert young.why == "too few calls in the baseline (99 < 100)"
    assert success_drop(window(success=10, technical=40), window(success=100)).fired


def test_two_failures_in_twenty_calls_are_not_a_drop() -> None:
    # The case a two-proportion z test gets wrong: it calls this p=3e-14.
    s = success_drop(window(success=18, technical=2), BASELINE)
    assert s.p_value == pytest.approx(fisher_by_sum(2, 20, 18, 5818), rel=1e-9, abs=0)
    assert s.p_value > 1e-3 and not s.fired


@given(answered=st.integers(20, 300), share=st.floats(0.0, 1.0))
def test_success_drop_p_value_falls_as_failures_rise(answered: int, share: float) -> None:
    k = round(share * answered)
    p = [
        success_drop(window(success=answered - j, technical=j), BASELINE).p_value
        for j in (k, min(k + 1, answered))
    ]
    assert 0.0 <= p[1] <= p[0] + 1e-12 <= 1.0 + 1e-12


# -- business declines -------------------------------------------------------------------


def test_a_wave_of_business_declines_fires_nothing() -> None:
    # Insufficient funds for 60% of payers: same traffic, same latency, the channel fine.
    wave = window(
        success=39,
        business=60,
        technical=1,
        latencies=[(90, 5), (180, 35), (280, 35), (450, 15), (700, 8), (1000, 2)],
    )
    signals = detect(wave, BASELINE, 5.0, BASELINE_S)
    assert [s.name for s in signals] == [
        "error_spike",
        "success_drop",
        "latency_spike",
        "traffic_drop",
    ]
    assert not any(s.fired for s in signals), [s.why for s in signals]


@given(
    success=st.integers(0, 200),
    technical=st.integers(0, 200),
    unknown=st.integers(0, 50),
    declines=st.integers(0, 10_000),
)
def test_declines_change_no_rate_signal(
    success: int, technical: int, unknown: int, declines: int
) -> None:
    plain = window(success=success, technical=technical, unknown=unknown)
    declined = window(success=success, technical=technical, unknown=unknown, business=declines)
    assert error_spike(declined, BASELINE) == error_spike(plain, BASELINE)
    assert success_drop(declined, BASELINE) == success_drop(plain, BASELINE)


# -- latency_spike -----------------------------------------------------------------------


def test_a_latency_spike_fires() -> None:
    slow = window(success=97, business=3, latencies=[(700, 20), (1000, 50), (1800, 30)])
    s = latency_spike(slow, BASELINE)
    assert s.fired and s.calls == 100
    assert s.baseline is not None and 500 < s.baseline < 800
    assert s.value >= 2 * s.baseline
    assert s.why.startswith(f"p95 latency {s.value:.0f} ms of 100 calls vs ")


def test_usual_latency_is_no_spike() -> None:
    s = latency_spike(healthy_recent(), BASELINE)
    assert not s.fired and s.p_value > ALPHA


def test_latency_spike_is_tested_by_calls_above_the_baseline_p95() -> None:
    # Baseline p95 falls in the 500-800 ms bucket: the 40 calls above 800 ms (not the
    # 10 inside that bucket) are tested against the 5% that lie above the baseline p95.
    slow = window(success=100, latencies=[(280, 50), (700, 10), (1000, 40)])
    s = latency_spike(slow, BASELINE)
    assert s.p_value == pytest.approx(binomial_by_sum(40, 100, Fraction(1, 20)), rel=1e-9, abs=0)


def test_a_slowdown_under_twice_the_baseline_p95_is_no_spike() -> None:
    slower = window(success=100, latencies=[(900, 100)])  # every call slower: p95 1.7x
    s = latency_spike(slower, BASELINE)
    assert s.p_value < ALPHA and s.value >= 500 and not s.fired
    assert "under 2x the baseline" in s.why


def test_a_fast_key_getting_slower_is_under_the_floor() -> None:
    fast = window(success=1000, latencies=[(20, 900), (40, 100)])  # p95 under 50 ms
    slower = window(success=100, latencies=[(250, 100)])  # 5x, yet nobody waits
    s = latency_spike(slower, fast)
    assert s.p_value < ALPHA and s.value >= 2 * (s.baseline or 0) and not s.fired
    assert "under the 500 ms floor" in s.why


def test_latency_spike_needs_volume() -> None:
    few = latency_spike(window(success=19, latencies=[(3000, 19)]), BASELINE)
    assert not few.fired and few.p_value == 1.0 and few.why == "too few calls (19 < 20)"
    thin = window(success=99, latencies=[(200, 99)])
    young = latency_spike(window(success=50, latencies=[(3000, 50)]), thin)
    assert not young.fired and young.why == "too few calls in the baseline (99 < 100)"


# -- traffic_drop ------------------------------------------------------------------------


def test_a_traffic_drop_fires() -> None:
    s = traffic_drop(window(success=30), BASELINE, 5.0, BASELINE_S)  # 30 of 99.7 expected
    assert s.fired and s.value == pytest.approx(6.0) and s.calls == 30
    assert s.baseline == pytest.approx(5998 / 300)
    assert s.p_value == pytest.approx(poisson_by_sum(30, Decimal(5998) / 60), rel=1e-9, abs=0)
    assert s.p_value < 1e-12


def test_ordinary_traffic_is_no_drop() -> None:
    for calls in (80, 100, 130):
        s = traffic_drop(window(success=calls), BASELINE, 5.0, BASELINE_S)
        assert not s.fired


def test_a_significant_dip_is_a_drop_only_under_40_percent() -> None:
    busy = window(success=60_000)  # 200 calls/s: 1000 expected in 5 s
    half = traffic_drop(window(success=500), busy, 5.0, BASELINE_S)
    assert half.p_value < ALPHA and not half.fired
    assert "above 40% of expected" in half.why
    assert not traffic_drop(window(success=400), busy, 5.0, BASELINE_S).fired
    assert traffic_drop(window(success=399), busy, 5.0, BASELINE_S).fired


def test_traffic_drop_needs_twenty_expected_calls() -> None:
    quiet = window(success=600)  # 2 calls/s: 10 expected in 5 s
    s = traffic_drop(window(), quiet, 5.0, BASELINE_S)
    assert not s.fired and s.p_value == 1.0
    assert s.why == "too few calls (10.0 expected < 20)"
    assert traffic_drop(window(), quiet, 10.0, BASELINE_S).fired  # 0 of 20 expected


def test_traffic_drop_refuses_empty_durations() -> None:
    with pytest.raises(ValueError, match="positive"):
        traffic_drop(window(), BASELINE, 0.0, BASELINE_S)


# -- all together ------------------------------------------------------------------------


def test_a_healthy_key_fires_nothing() -> None:
    for scale in (1, 2, 10):
        signals = detect(healthy_recent(scale), BASELINE, 5.0 * scale, BASELINE_S)
        assert not any(s.fired for s in signals), [s.why for s in signals]


def test_an_outage_under_steady_traffic_fires_the_rate_detectors_only() -> None:
    outage = window(success=20, business=3, technical=60, unknown=17)
    fired = {s.name for s in detect(outage, BASELINE, 5.0, BASELINE_S) if s.fired}
    assert fired == {"error_spike", "success_drop"}


@given(
    success=st.integers(0, 300),
    business=st.integers(0, 300),
    technical=st.integers(0, 300),
    slow=st.integers(0, 300),
    recent_s=st.floats(1.0, 60.0),
)
def test_a_fired_signal_is_always_significant(
    success: int, business: int, technical: int, slow: int, recent_s: float
) -> None:
    recent = window(success, business, technical, latencies=[(250, success), (2500, slow)])
    for s in detect(recent, BASELINE, recent_s, BASELINE_S):
        assert 0.0 <= s.p_value <= 1.0
        assert not s.fired or s.p_value < ALPHA
        assert s.why


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        DetectorSettings(alpha=0.0)
    with pytest.raises(ValueError, match="error_threshold"):
        DetectorSettings(error_threshold=1.5)
    with pytest.raises(ValueError, match="traffic_drop_ratio"):
        DetectorSettings(traffic_drop_ratio=0.0)
    with pytest.raises(ValueError, match="latency_ratio"):
        DetectorSettings(latency_ratio=0.5)
