"""The oracle on hand-built scenarios whose answer is known, and the draws it replays."""

from __future__ import annotations

from typing import Any

import yaml

from paymend.lab.arrivals import Arrival
from paymend.lab.draws import call_draws, query_draw
from paymend.lab.fate import Answer, Fates
from paymend.lab.oracle import Limits, Oracle
from paymend.lab.scenario import Scenario
from paymend.providers.simulator import ChargeState

LIMITS = Limits(max_attempts=4, settle_within_s=300.0)


def scenario(faults: list[dict[str, Any]], channels: str = "a,b", **extra: Any) -> Scenario:
    names = channels.split(",")
    spec = {
        "name": "hand-built",
        "seed": 3,
        "duration": "60m",
        "rate": 1,
        "methods": {"card": 1.0},
        "channels": {
            f"sim_{n}": {"methods": ["card"], "latency_ms": {"p50": 100, "p99": 400}} for n in names
        },
        "routing": [f"sim_{n}" for n in names],
        "faults": faults,
        **extra,
    }
    return Scenario.model_validate(yaml.safe_load(yaml.safe_dump(spec)))


def arrival(t: float = 60.0, truth: str = "ok", n: int = 0) -> Arrival:
    return Arrival(n, t, "card", "CN-East", "ICBC", 1000, truth)


def test_draws_are_a_pure_function_of_where_they_are_made() -> None:
    assert call_draws(7, 12, "sim_a", 1, 3) == call_draws(7, 12, "sim_a", 1, 3)
    others = [
        call_draws(8, 12, "sim_a", 1, 3),
        call_draws(7, 13, "sim_a", 1, 3),
        call_draws(7, 12, "sim_b", 1, 3),
        call_draws(7, 12, "sim_a", 2, 3),
    ]
    assert all(o != call_draws(7, 12, "sim_a", 1, 3) for o in others)
    assert query_draw(7, 12, "sim_a", 1, 1) == query_draw(7, 12, "sim_a", 1, 1)
    assert query_draw(7, 12, "sim_a", 1, 1) != query_draw(7, 12, "sim_a", 1, 2)
    # a stable hash: the same figure in every process (Python's own `hash` is salted)
    assert round(call_draws(7, 12, "sim_a", 1, 0).error, 12) == round(
        call_draws(7, 12, "sim_a", 1, 0).error, 12
    )
    assert 0.0 <= call_draws(7, 12, "sim_a", 1, 0).error < 1.0


def test_only_a_failover_saves_a_payment_while_its_first_channel_is_down() -> None:
    down = [{"at": "0s", "for": "30m", "channel": "sim_a", "kind": "outage"}]
    verdict = Oracle(scenario(down), LIMITS).verdict(arrival())
    assert verdict.possible and verdict.channel == "sim_b" and verdict.attempt == 1
    alone = Oracle(scenario(down, channels="a"), LIMITS).verdict(arrival())
    assert not alone.possible and alone.why_not == "channels"


def test_a_charged_timeout_succeeds_once_a_status_query_finds_the_money() -> None:
    hang = [{"at": "0s", "for": "30m", "kind": "timeout", "charged": 1.0}]
    s = scenario(hang, channels="a")
    draws = call_draws(s.seed, 0, "sim_a", 1, 1)
    fate = Fates(s).call("sim_a", 60.0, "card", "ICBC", "CN-East", "ok", draws)
    assert fate.answer is Answer.HANG and fate.booked is ChargeState.CHARGED
    assert Oracle(s, LIMITS).verdict(arrival()).possible
    # the same hang that never reached the bank: nothing any system could do
    lost = scenario([{**hang[0], "charged": 0.0}], channels="a")
    assert not Oracle(lost, LIMITS).verdict(arrival()).possible
    # a charged timeout books what the payer's truth allows: no money from a declined card
    poor = Oracle(s, LIMITS).verdict(arrival(truth="insufficient_funds"))
    assert not poor.possible and poor.why_not == "payer"


def test_a_fault_longer_than_the_settlement_window_is_impossible_to_wait_out() -> None:
    def verdict(ends_after_s: int) -> Any:
        fault = {"at": "0s", "for": f"{ends_after_s}s", "channel": "sim_a", "kind": "outage"}
        return Oracle(scenario([fault], channels="a"), LIMITS).verdict(arrival(t=60.0))

    within = verdict(200)  # ends 140 s after the arrival: the worker's retry gets through
    assert within.possible and within.at == 200.0 and within.attempt == 2
    beyond = verdict(400)  # ends 340 s after: past settle_within_s
    assert not beyond.possible


def test_the_attempt_limit_bounds_the_oracle() -> None:
    # every call on sim_a errors at rate 0.5 for an hour: only draws decide, not waiting
    flaky = [{"at": "0s", "for": "60m", "kind": "error", "code": "SYSTEM_ERROR", "rate": 0.5}]
    s = scenario(flaky, channels="a")
    fates = Fates(s)
    for n in range(200):
        a = arrival(n=n)
        first_ok = next(
            (
                k
                for k in range(1, 10)
                if fates.call(
                    "sim_a",
                    a.t,
                    "card",
                    "ICBC",
                    "CN-East",
                    "ok",
                    call_draws(s.seed, n, "sim_a", k, 1),
                ).can_succeed
            ),
            None,
        )
        verdict = Oracle(s, LIMITS).verdict(a)
        assert verdict.possible == (first_ok is not None and first_ok <= 4), n
        if verdict.possible:
            assert verdict.attempt == first_ok


def test_three_d_secure_counts_once_the_customer_completes_it() -> None:
    s = scenario([], channels="a")
    verdict = Oracle(s, LIMITS).verdict(arrival(truth="needs_authentication"))
    assert verdict.possible and verdict.attempt == 1
    fate = Fates(s).call(
        "sim_a",
        60.0,
        "card",
        "ICBC",
        "CN-East",
        "needs_authentication",
        call_draws(3, 0, "sim_a", 1, 0),
    )
    assert (
        fate.booked is ChargeState.AWAITING_AUTHENTICATION
        and fate.code == "AUTHENTICATION_REQUIRED"
    )


def test_an_expired_credential_counts_as_refreshed() -> None:
    expired = [{"at": "0s", "for": "60m", "channel": "sim_a", "kind": "credentials_expired"}]
    assert Oracle(scenario(expired, channels="a"), LIMITS).verdict(arrival()).possible
