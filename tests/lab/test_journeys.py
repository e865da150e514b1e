"""Each failed payment's customer journey in the lab (lab/journeys.py): told a next step
at the checkout or by a notice, paying again another way with the scenario's
probability, and `recovered_by_customer` beside the engine's own figures, which the
follow-up payments stay out of."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paymend.failures.classify import default_classifier
from paymend.failures.messages import load_messages
from paymend.lab.draws import stream
from paymend.lab.journeys import JOURNEY_BASE, another_method, has_next_step
from paymend.lab.metrics import summarize
from paymend.lab.report import write_report
from paymend.lab.runner import Run, run
from paymend.lab.scenario import Scenario, load_scenario

# one channel that times out for 8 s: payments then end failed by the worker, after the
# checkout told the customer "processing"; a few payers have no funds (told at once)
SCENARIO = """\
name: journeys
seed: 11
duration: 20s
rate: 2
methods: {card: 0.6, alipay: 0.4}
payers: {insufficient_funds: 0.15}
channels:
  sim_a: {methods: [card, alipay], latency_ms: {p50: 100, p99: 400}}
routing: [sim_a]
faults:
  - {at: 5s, for: 8s, channel: sim_a, kind: timeout, rate: 1.0}
"""
PAID = ("succeeded", "partially_refunded", "refunded")


def _run(tmp: Path, name: str, extra: str) -> tuple[Run, dict[str, Any]]:
    path = tmp / f"{name}.yaml"
    path.write_text(SCENARIO + extra)
    done = run(load_scenario(path), "default", tmp)
    return done, summarize(done)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Run, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("journeys")
    return {
        "checkout_only": _run(tmp, "a", "journeys: {follow_advice: 1.0, return_after: 30s}\n"),
        "with_notices": _run(
            tmp, "b", "notices: true\njourneys: {follow_advice: 0.5, return_after: 30s}\n"
        ),
    }


def _status(done: Run, payment_id: str | None) -> str | None:
    found = done.records.payments.get(payment_id or "")
    return None if found is None else found.status


def test_without_notices_only_the_checkouts_failures_are_told(
    runs: dict[str, tuple[Run, dict[str, Any]]],
) -> None:
    done, figures = runs["checkout_only"]
    journeys = done.journeys
    assert journeys is not None
    failed = [a for a in done.arrivals if _status(done, a.payment_id) == "failed"]
    at_checkout = [a for a in failed if a.status == "failed"]
    assert figures["failed_payments"] == len(failed) > len(at_checkout) > 0
    # a late failure tells a customer who left with "processing" nothing
    assert figures["told_next_step"] == len(at_checkout)
    assert journeys.next_step == {a.n for a in at_checkout}
    # everyone told follows (follow_advice: 1.0), with another of the scenario's methods
    assert figures["followed_advice"] == len(at_checkout)
    originals = {a.n: a for a in done.arrivals}
    for f in journeys.follow_ups:
        first = originals[f.n - JOURNEY_BASE]
        assert f.method != first.method and (f.bank, f.amount) == (first.bank, first.amount)
        assert f.t == pytest.approx(journeys.told[first.n] + 30.0)
    recovered = sum(_status(done, f.payment_id) in PAID for f in journeys.follow_ups)
    assert figures["recovered_by_customer"] == recovered <= figures["followed_advice"]


def test_notices_tell_late_failures_and_customers_follow_with_the_seeds_draws(
    runs: dict[str, tuple[Run, dict[str, Any]]], tmp_path: Path
) -> None:
    done, figures = runs["with_notices"]
    journeys = done.journeys
    assert journeys is not None
    failed = [a for a in done.arrivals if _status(done, a.payment_id) == "failed"]
    assert figures["told_next_step"] == figures["failed_payments"] == len(failed)
    # who follows is a pure function of the seed and the payment's number
    follows = {a.n for a in failed if stream(11, "journey", a.n).random() < 0.5}
    assert 0 < len(follows) < len(failed)
    assert {f.n - JOURNEY_BASE for f in journeys.follow_ups} == follows
    assert figures["followed_advice"] == len(follows)
    recovered = figures["recovered_by_customer"]
    assert 0 < recovered <= len(follows)
    assert figures["recovered_by_customer_rate"] == round(recovered / len(failed), 4)
    first = sum(_status(done, a.payment_id) in PAID for a in done.arrivals)
    n = figures["payments"]
    assert figures["order_success_rate"] == round((first + recovered) / n, 4)
    report = write_report(done, figures, tmp_path / "report").read_text()
    assert f"| recovered_by_customer | {recovered} |" in report


def test_the_follow_ups_stay_out_of_the_engines_own_figures(
    runs: dict[str, tuple[Run, dict[str, Any]]],
) -> None:
    for done, figures in runs.values():
        n = len(done.arrivals)
        first = sum(_status(done, a.payment_id) in PAID for a in done.arrivals)
        assert figures["payments"] == n and figures["success_rate"] == round(first / n, 4)
        assert figures["failed"] == figures["failed_payments"]
        assert sum(figures["messages"].values()) == figures["failed"]
        assert figures["duplicate_charges"] == figures["charged_but_failed"] == 0
        assert figures["lost_payments"] == figures["processing_at_end"] == 0
    a, b = (figures for _, figures in runs.values())
    for key in ("success_rate", "oracle_success_rate", "regret", "failed"):
        assert a[key] == b[key], key
    assert b["recovered_by_customer"] > a["recovered_by_customer"]  # notices bring them back


def test_a_next_step_is_advice_beyond_repeating_what_failed() -> None:
    catalogue = default_classifier().catalogue
    messages = load_messages(catalogue)  # a copy of its own, changed below
    assert has_next_step(messages, "insufficient_funds")
    assert has_next_step(messages, "suspected_fraud")  # read as the generic decline's
    timeout = messages.files["zh-CN"].messages["provider_timeout"]
    retry_only = [a for a in timeout.actions if a.retry]
    assert retry_only and len(retry_only) < len(timeout.actions)
    messages.files["zh-CN"].messages["provider_timeout"] = timeout.model_copy(
        update={"actions": retry_only}
    )
    assert not has_next_step(messages, "provider_timeout")  # "pay again" alone is none


def test_another_method_follows_the_scenarios_shares() -> None:
    scenario = Scenario.model_validate(
        yaml.safe_load(
            SCENARIO.replace(
                "{card: 0.6, alipay: 0.4}", "{card: 0.5, alipay: 0.2, wechat_pay: 0.3}"
            ).replace("[card, alipay]", "[card, alipay, wechat_pay]")
        )
    )
    assert another_method(scenario, "card", 0.0) == "alipay"
    assert another_method(scenario, "card", 0.39) == "alipay"  # 0.2 of the others' 0.5
    assert another_method(scenario, "card", 0.41) == "wechat_pay"
    assert another_method(scenario, "alipay", 0.99) == "wechat_pay"
    alone = scenario.model_copy(update={"methods": {"card": 1.0}})
    assert another_method(alone, "card", 0.5) == "card"  # another card of the same method
