"""Property: on any small scenario, paymend never saves a payment the oracle calls lost,
and the oracle replays the very fates the engine's calls met."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paymend.lab.metrics import succeeded, summarize, verdicts
from paymend.lab.runner import run
from paymend.lab.scenario import Scenario

KINDS = ("outage", "timeout", "error", "latency", "rate_limit", "credentials_expired")


@st.composite
def faults(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    fault: dict[str, Any] = {
        "at": draw(st.integers(0, 25)),
        "for": draw(st.sampled_from([2, 8, 30, 400])),  # 400 s: past settle_within_s
        "kind": kind,
        "rate": draw(st.sampled_from([0.3, 0.8, 1.0])),
        "channel": draw(st.sampled_from([None, "sim_a", "sim_b"])),
        "bank": draw(st.sampled_from([None, "CMB"])),
    }
    if kind == "timeout":
        fault["charged"] = draw(st.sampled_from([0.0, 0.5, 1.0]))
    if kind == "error":
        fault["code"] = "SYSTEM_ERROR"
    if kind == "latency":
        fault["p50"], fault["p99"] = 2500, 9000
    return fault


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "random",
            "seed": draw(st.integers(0, 10_000)),
            "duration": 30,
            "rate": 3,
            "methods": {"card": 0.7, "alipay": 0.3},
            "banks": {"ICBC": 0.5, "CMB": 0.5},
            "payers": {"insufficient_funds": 0.05, "needs_authentication": 0.1},
            "channels": {
                "sim_a": {
                    "methods": ["card", "alipay"],
                    "technical_error_rate": draw(st.sampled_from([0.0, 0.05, 0.3])),
                    "cost_bps": 60,
                },
                "sim_b": {"methods": ["card"], "technical_error_rate": 0.02, "cost_bps": 80},
            },
            "routing": ["sim_a", "sim_b"],
            "faults": draw(st.lists(faults(), max_size=3)),
        }
    )


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_paymend_never_beats_the_oracle_payment_by_payment(scenario: Scenario) -> None:
    result = run(scenario)
    for a, verdict in zip(result.arrivals, verdicts(result), strict=True):
        assert verdict.possible or not succeeded(result, a), (a, verdict)
    figures = summarize(result)
    assert figures["oracle_violations"] == 0
    assert figures["recovery_ratio"] is None or figures["recovery_ratio"] <= 1.0
    assert figures["regret"] == sum(figures["regret_by_cause"].values())
    assert figures["duplicate_charges"] == 0
    assert figures["lost_payments"] == 0
