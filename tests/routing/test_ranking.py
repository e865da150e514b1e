"""Health-aware ranking: each payment goes first to the channel most likely to succeed
for it, within the merchant's rules, and the route says why in one line."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymend.domain.channel import Capabilities
from paymend.health.keys import context_keys
from paymend.health.window import WindowStats
from paymend.routing.ranking import (
    EXPLORE_WINDOW,
    MAX_REASON,
    PRIOR,
    STRENGTH,
    PaymentContext,
    Route,
    RoutingRules,
    estimate,
    rank,
)

CARD = frozenset({"card"})
CAPS = {
    "sim_a": Capabilities(CARD),
    "sim_b": Capabilities(CARD),
    "sim_c": Capabilities(CARD),
}
RULES = RoutingRules(("sim_a", "sim_b", "sim_c"), exploration=0.0)
EQUAL = {"sim_a": 60.0, "sim_b": 60.0, "sim_c": 60.0}


def pay(bank: str | None = "ICBC", method: str = "card", currency: str = "CNY") -> PaymentContext:
    return PaymentContext(method, currency, "CN-East", bank, 19_99)


def healthy(n: int = 5000) -> WindowStats:
    return WindowStats(success=n, technical=n // 1000)


def go(
    stats: dict[str, WindowStats],
    ctx: PaymentContext | None = None,
    rules: RoutingRules = RULES,
    costs: dict[str, float] | None = None,
    seed: int = 0,
    blocked: dict[str, str] | None = None,
) -> Route:
    return rank(
        ctx or pay(),
        rules,
        CAPS,
        EQUAL if costs is None else costs,
        stats.get,
        random.Random(seed),
        blocked or {},
    )


ALL_HEALTHY = {"sim_a": healthy(), "sim_b": healthy(), "sim_c": healthy()}


# -- the estimate -------------------------------------------------------------------------


def test_a_channel_without_data_is_estimated_at_the_prior() -> None:
    no_data: dict[str, WindowStats] = {}
    e = estimate("sim_a", context_keys("sim_a", "card", "CMB", None, "<10"), no_data.get)
    assert e.success == pytest.approx(PRIOR)
    assert (e.calls, e.worst_key) == (0, None)


def test_the_channel_rate_is_smoothed_toward_the_prior_by_the_number_of_calls() -> None:
    stats = {"sim_a": WindowStats(success=80, technical=20)}
    e = estimate("sim_a", ("sim_a",), stats.get)
    assert e.success == pytest.approx((80 + STRENGTH * PRIOR) / (100 + STRENGTH))
    assert e.calls == 100


def test_a_scope_shrinks_toward_its_channel_and_the_worst_scope_sets_the_estimate() -> None:
    stats = {
        "sim_a": WindowStats(success=1000),
        "sim_a|bank=CMB": WindowStats(success=10, technical=10),
        "sim_a|region=CN": WindowStats(success=5, technical=1),
    }
    keys = context_keys("sim_a", "card", "CMB", "CN", "<10")
    channel = (1000 + STRENGTH * PRIOR) / (1000 + STRENGTH)
    e = estimate("sim_a", keys, stats.get)
    assert e.success == pytest.approx((10 + STRENGTH * channel) / (20 + STRENGTH))
    assert (e.calls, e.worst_key) == (20, "sim_a|bank=CMB")


def test_scopes_better_than_the_channel_leave_the_channel_estimate() -> None:
    stats = {"sim_a": WindowStats(success=90, technical=10), "sim_a|bank=CMB": healthy()}
    e = estimate("sim_a", context_keys("sim_a", "card", "CMB", None, "<10"), stats.get)
    assert e.worst_key is None
    assert e.success == pytest.approx((90 + STRENGTH * PRIOR) / (100 + STRENGTH))


def test_business_declines_never_lower_an_estimate() -> None:
    keys = context_keys("sim_a", "card", "CMB", None, "<10")
    clean = {"sim_a": WindowStats(success=300, technical=3)}
    declined = {
        "sim_a": WindowStats(success=300, business=900, technical=3),
        "sim_a|bank=CMB": WindowStats(business=400),
    }
    assert estimate("sim_a", keys, declined.get) == estimate("sim_a", keys, clean.get)


# -- ordering by health --------------------------------------------------------------------


def test_a_sick_bank_on_one_channel_moves_only_that_banks_payments() -> None:
    stats = {
        "sim_a": WindowStats(success=20_000, technical=30),  # the CMB failures count here too
        "sim_a|bank=CMB": WindowStats(success=40, technical=30),
        "sim_a|bank=ICBC": WindowStats(success=2000),
        "sim_b": healthy(),
    }
    cmb = go(stats, pay("CMB"))
    assert cmb.channels == ("sim_b", "sim_c", "sim_a")
    assert cmb.estimates[-1].worst_key == "sim_a|bank=CMB"
    shown = f"{math.floor(cmb.estimates[-1].success * 1000) / 10:.1f}%"
    assert cmb.estimates[-1].success < 0.8
    assert f"then sim_c 98.0%, sim_a {shown} (bank=CMB)" in cmb.reason
    for other in ("ICBC", "ABC", None):
        route = go(stats, pay(other))
        assert route.channels == ("sim_a", "sim_b", "sim_c"), other
        assert route.estimates[0].worst_key is None


def test_business_declines_do_not_move_the_ranking() -> None:
    before = go(ALL_HEALTHY, pay("CMB"))
    waves = dict(ALL_HEALTHY)
    waves["sim_a"] = WindowStats(success=5000, business=20000, technical=5)
    waves["sim_a|bank=CMB"] = WindowStats(business=5000)
    assert go(waves, pay("CMB")) == before
    assert before.channels[0] == "sim_a"


def test_a_clearly_better_channel_goes_first_whatever_it_costs() -> None:
    stats = dict(ALL_HEALTHY, sim_a=WindowStats(success=900, technical=100))
    route = go(stats, costs={"sim_a": 10.0, "sim_b": 90.0, "sim_c": 80.0})
    assert route.channels == ("sim_c", "sim_b", "sim_a")


def test_cost_breaks_a_tie_on_success() -> None:
    route = go(ALL_HEALTHY, costs={"sim_a": 80.0, "sim_b": 40.0, "sim_c": 60.0})
    assert route.channels == ("sim_b", "sim_c", "sim_a")
    assert "tie on success: cheaper first" in route.reason
    assert "cost 40 bps" in route.reason


def test_estimates_within_the_tie_margin_count_as_tied() -> None:
    stats = dict(ALL_HEALTHY, sim_b=WindowStats(success=4990, technical=15))  # ~0.2 pts lower
    costs = {"sim_a": 80.0, "sim_b": 40.0, "sim_c": 90.0}
    assert go(stats, costs=costs).channels[0] == "sim_b"
    strict = RoutingRules(RULES.priority, exploration=0.0, tie_margin=0.0)
    assert go(stats, rules=strict, costs=costs).channels[0] == "sim_a"


def test_priority_breaks_a_tie_on_success_and_cost() -> None:
    assert go(ALL_HEALTHY).channels == ("sim_a", "sim_b", "sim_c")
    reverse = RoutingRules(("sim_c", "sim_b", "sim_a"), exploration=0.0)
    route = go(ALL_HEALTHY, rules=reverse)
    assert route.channels == ("sim_c", "sim_b", "sim_a")
    assert "tie on success and cost: priority order" in route.reason


def test_a_channel_without_a_known_cost_goes_after_priced_ones_in_a_tie() -> None:
    assert go(ALL_HEALTHY, costs={"sim_b": 70.0, "sim_c": 90.0}).channels == (
        "sim_b",
        "sim_c",
        "sim_a",
    )


# -- the merchant's rules ----------------------------------------------------------------------


def test_a_pinned_channel_goes_first_for_its_method_even_when_it_is_worse() -> None:
    stats = dict(ALL_HEALTHY, sim_c=WindowStats(success=800, technical=200))
    rules = RoutingRules(RULES.priority, pinned={"card": "sim_c"}, exploration=1.0)
    for seed in range(20):  # exploration never overrides a pin
        route = go(stats, rules=rules, seed=seed)
        assert route.channels[0] == "sim_c"
        assert "pinned for card" in route.reason
    wallet = {"sim_a": Capabilities(frozenset({"card", "alipay"})), "sim_c": CAPS["sim_c"]}
    other = rank(pay(method="alipay"), rules, wallet, EQUAL, stats.get, random.Random(0))
    assert other.channels == ("sim_a",)


def test_a_blocked_pinned_channel_is_skipped_and_the_rest_ranked_by_health() -> None:
    rules = RoutingRules(RULES.priority, pinned={"card": "sim_c"}, exploration=0.0)
    route = go(ALL_HEALTHY, rules=rules, blocked={"sim_c": "circuit open"})
    assert route.channels == ("sim_a", "sim_b")
    assert "pinned" not in route.reason
    assert "skipped sim_c (circuit open)" in route.reason


def test_split_shares_converge_to_the_configured_weights_among_tied_channels() -> None:
    rules = RoutingRules(RULES.priority, split={"sim_a": 0.7, "sim_b": 0.3}, exploration=0.0)
    rng = random.Random(42)
    draws = 20_000
    firsts = Counter(
        rank(pay(), rules, CAPS, EQUAL, ALL_HEALTHY.get, rng).channels[0] for _ in range(draws)
    )
    assert firsts["sim_a"] / draws == pytest.approx(0.7, abs=0.015)
    assert firsts["sim_b"] / draws == pytest.approx(0.3, abs=0.015)
    assert firsts["sim_c"] == 0  # tied, but given no share of the volume
    assert "volume split" in go(ALL_HEALTHY, rules=rules).reason


def test_split_never_sends_volume_to_a_channel_that_is_not_tied() -> None:
    stats = dict(ALL_HEALTHY, sim_b=WindowStats(success=900, technical=100))
    rules = RoutingRules(RULES.priority, split={"sim_a": 0.1, "sim_b": 0.9}, exploration=0.0)
    assert {go(stats, rules=rules, seed=s).channels[0] for s in range(200)} == {"sim_a"}


def test_exploration_tries_a_near_best_channel_at_the_configured_rate() -> None:
    stats = {
        "sim_a": healthy(),
        "sim_b": WindowStats(success=970, technical=30),  # ~3 pts below: near
        "sim_c": WindowStats(success=500, technical=500),  # failing: never explored
    }
    rules = RoutingRules(RULES.priority, exploration=0.1)
    rng = random.Random(7)
    draws = 20_000
    routes = [rank(pay(), rules, CAPS, EQUAL, stats.get, rng) for _ in range(draws)]
    firsts = Counter(r.channels[0] for r in routes)
    assert firsts["sim_b"] / draws == pytest.approx(0.1, abs=0.01)
    assert firsts["sim_c"] == 0
    assert all(("exploring" in r.reason) == (r.channels[0] != "sim_a") for r in routes)
    assert stats["sim_c"].success_rate < 1 - EXPLORE_WINDOW


def test_tied_channels_are_not_explored_they_already_share_by_cost() -> None:
    rules = RoutingRules(RULES.priority, exploration=0.5)
    rng = random.Random(5)
    routes = [rank(pay(), rules, CAPS, EQUAL, ALL_HEALTHY.get, rng) for _ in range(500)]
    assert {r.channels[0] for r in routes} == {"sim_a"}
    assert not any("exploring" in r.reason for r in routes)


def test_no_exploration_when_it_is_set_to_zero() -> None:
    stats = dict(ALL_HEALTHY, sim_b=WindowStats(success=970, technical=30))
    assert {go(stats, seed=s).channels[0] for s in range(500)} == {"sim_a"}


def test_the_same_seed_gives_the_same_routes() -> None:
    rules = RoutingRules(RULES.priority, split={"sim_a": 1, "sim_b": 1}, exploration=0.3)

    def run(seed: int) -> list[Route]:
        rng = random.Random(seed)
        return [rank(pay(), rules, CAPS, EQUAL, ALL_HEALTHY.get, rng) for _ in range(50)]

    assert run(3) == run(3)
    assert run(3) != run(4)


# -- eligibility ---------------------------------------------------------------------------


def test_blocked_channels_are_skipped_and_named_with_why() -> None:
    route = go(ALL_HEALTHY, blocked={"sim_a": "circuit open", "sim_b": "paused by ops"})
    assert route.channels == ("sim_c",)
    assert "sim_a (circuit open)" in route.reason
    assert "sim_b (paused by ops)" in route.reason


def test_nothing_eligible_gives_an_empty_route_that_says_why() -> None:
    blocked = dict.fromkeys(CAPS, "circuit open")
    route = go(ALL_HEALTHY, blocked=blocked)
    assert route == Route((), route.reason, ())
    assert route.reason == "no eligible channel: skipped sim_a, sim_b, sim_c (circuit open)"
    empty = go(ALL_HEALTHY, rules=RoutingRules(()))
    assert empty.channels == () and "priority is empty" in empty.reason


def test_only_channels_that_can_take_the_payment_are_ranked() -> None:
    caps = {
        "card_any": Capabilities(CARD),
        "card_cny": Capabilities(CARD, currencies=frozenset({"CNY"})),
        "card_eu": Capabilities(CARD, regions=frozenset({"EU"})),
        "alipay": Capabilities(frozenset({"alipay"})),
        "stranger": Capabilities(CARD),  # healthiest of all, but not in the priority list
    }
    rules = RoutingRules(("alipay", "card_eu", "card_cny", "card_any", "ghost"), exploration=0)
    stats = {"stranger": healthy(100_000)}
    usd = rank(pay(currency="USD"), rules, caps, {}, stats.get, random.Random(0))
    assert usd.channels == ("card_any",)
    assert usd.reason.endswith(
        "skipped alipay, card_eu, card_cny (cannot take card/USD/CN-East), ghost (no such channel)"
    )
    assert "no calls yet" in usd.reason
    cny = rank(pay(currency="CNY"), rules, caps, {}, stats.get, random.Random(0))
    assert cny.channels == ("card_cny", "card_any")


def test_the_reason_reads_as_one_line_for_support() -> None:
    stats = dict(ALL_HEALTHY, sim_a=WindowStats(success=410, technical=2))
    route = go(
        stats,
        costs={"sim_a": 60.0, "sim_b": 80.0},
        blocked={"sim_c": "circuit open"},
        rules=RoutingRules(RULES.priority, exploration=0.0, tie_margin=0.0),
    )
    assert route.channels == ("sim_b", "sim_a")
    a = f"{math.floor(route.estimates[1].success * 1000) / 10:.1f}%"
    assert route.reason == (
        "sim_b first: est. success 99.8% over 5005 calls, cost 80 bps;"
        f" then sim_a {a}; skipped sim_c (circuit open)"
    )


def test_bad_rules_refuse_to_load() -> None:
    with pytest.raises(ValueError, match="pinned for 'card' is not in priority"):
        RoutingRules(("sim_a",), pinned={"card": "sim_z"})
    with pytest.raises(ValueError, match="split names 'sim_z'"):
        RoutingRules(("sim_a",), split={"sim_z": 1.0})
    with pytest.raises(ValueError, match="share of 'sim_a' must be >= 0"):
        RoutingRules(("sim_a",), split={"sim_a": -1.0})
    with pytest.raises(ValueError, match="exploration"):
        RoutingRules(("sim_a",), exploration=1.5)
    with pytest.raises(ValueError, match="twice"):
        RoutingRules(("sim_a", "sim_a"))


def test_rules_do_not_change_when_the_callers_dicts_do() -> None:
    pins = {"card": "sim_b"}
    rules = RoutingRules(RULES.priority, pinned=pins, exploration=0.0)
    pins["card"] = "sim_c"
    assert go(ALL_HEALTHY, rules=rules).channels[0] == "sim_b"


# -- properties ----------------------------------------------------------------------------

POOL = ("a", "b", "c", "d", "e")
METHODS = ("card", "alipay")
CURRENCIES = ("CNY", "USD", "JPY", "KWD")
REGIONS = ("CN", "EU")
BANKS = ("CMB", "ICBC")


def _subset(items: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(items))


windows = st.builds(
    WindowStats,
    success=st.integers(0, 2000),
    business=st.integers(0, 2000),
    technical=st.integers(0, 2000),
    unknown=st.integers(0, 200),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[object, ...]:
    priority = tuple(draw(st.permutations(POOL))[: draw(st.integers(0, len(POOL)))])
    caps = {
        name: Capabilities(
            draw(_subset(METHODS)),
            draw(st.none() | _subset(CURRENCIES)),
            draw(st.none() | _subset(REGIONS)),
        )
        for name in draw(_subset(POOL))
    }
    ctx = PaymentContext(
        draw(st.sampled_from(METHODS)),
        draw(st.sampled_from(CURRENCIES)),
        draw(st.none() | st.sampled_from(REGIONS)),
        draw(st.none() | st.sampled_from(BANKS)),
        draw(st.integers(0, 10**9)),
    )
    chosen = st.sampled_from(priority) if priority else st.nothing()
    rules = RoutingRules(
        priority,
        pinned=draw(st.dictionaries(st.sampled_from(METHODS), chosen, max_size=2)),
        split=draw(st.dictionaries(chosen, st.floats(0, 10), max_size=len(priority))),
        exploration=draw(st.floats(0, 1)),
        tie_margin=draw(st.floats(0, 0.1)),
    )
    keys = [k for c in POOL for k in context_keys(c, ctx.method, ctx.bank, ctx.region, "<10")]
    keys += [f"{c}|amount={band}" for c in POOL for band in ("10-100", "100-1000", ">=1000")]
    stats = draw(st.dictionaries(st.sampled_from(keys), windows))
    costs = draw(st.dictionaries(st.sampled_from(POOL), st.floats(0, 500)))
    blocked = draw(st.dictionaries(st.sampled_from(POOL), st.sampled_from(["circuit open"])))
    return ctx, rules, caps, costs, stats, blocked, draw(st.integers(0, 2**32))


@given(scenarios())
def test_a_route_is_a_permutation_of_the_eligible_channels(scenario: tuple[object, ...]) -> None:
    ctx, rules, caps, costs, stats, blocked, seed = scenario
    assert isinstance(ctx, PaymentContext) and isinstance(rules, RoutingRules)
    assert isinstance(caps, dict) and isinstance(costs, dict) and isinstance(stats, dict)
    assert isinstance(blocked, dict) and isinstance(seed, int)
    route = rank(ctx, rules, caps, costs, stats.get, random.Random(seed), blocked)
    eligible = {
        c
        for c in rules.priority
        if c in caps and caps[c].supports(ctx.method, ctx.currency, ctx.region) and c not in blocked
    }
    assert sorted(route.channels) == sorted(eligible)
    assert tuple(e.channel for e in route.estimates) == route.channels
    assert all(0.0 <= e.success <= 1.0 for e in route.estimates)
    assert 0 < len(route.reason) <= MAX_REASON
    for name in set(rules.priority) - eligible:
        assert name in route.reason or route.reason.endswith(("more", "…"))
    pin = rules.pinned.get(ctx.method)
    if pin in eligible:
        assert route.channels[0] == pin
