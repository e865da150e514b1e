"""Fraud in the lab (lab/fraud.py): a short card-testing wave and account takeovers beside
good customers, through the shipped risk rules, meet the targets of docs/risk.md."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from paymend.datafiles import DataFileError
from paymend.lab.fraud import NEW_DAYS, OLD_DAYS
from paymend.lab.metrics import summarize
from paymend.lab.runner import Run, run
from paymend.lab.scenario import load_scenario

SCENARIO = """\
name: fraud-short
seed: 3
duration: 120s
rate: 2.5
methods: {card: 0.8, alipay: 0.2}
amount: {min: 100, max: 80000}
payers: {insufficient_funds: 0.03, incorrect_details: 0.01, needs_authentication: 0.02}
channels:
  sim_a: {methods: [card, alipay], latency_ms: {p50: 120, p99: 800}, technical_error_rate: 0.002}
routing: [sim_a]
fraud:
  customers: 60
  abroad: 0.1
  card_testing:
    - {at: 10s, for: 110s, rate: 1.2}
  account_takeover:
    - {at: 40s, for: 80s, rate: 0.12}
"""


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("fraud")
    path = folder / "fraud-short.yaml"
    path.write_text(SCENARIO)
    finished = run(load_scenario(path), "default", folder)
    return finished, summarize(finished)


def test_card_testing_is_stopped_before_any_provider_call_after_its_first_minute(
    done: tuple[Run, dict[str, Any]],
) -> None:
    _, figures = done
    testing = figures["fraud_by_kind"]["card_testing"]
    print({k: v for k, v in figures.items() if "fraud" in k or "good" in k})
    assert testing["attempts"] > 100
    assert figures["card_testing_stopped_after_first_minute"] >= 0.95
    # the first minute is the rules' to learn: some cards are tried, and charged, then
    assert 0 < testing["charged"] < testing["attempts"] - testing["stopped"]
    assert testing["blocked"] == testing["stopped"]


def test_no_account_takeover_is_charged(done: tuple[Run, dict[str, Any]]) -> None:
    _, figures = done
    taken = figures["fraud_by_kind"]["account_takeover"]
    assert taken["attempts"] >= 5
    assert taken["challenged"] == taken["attempts"]  # never passes the cardholder's 3-D Secure
    assert figures["account_takeover_charged"] == 0


def test_good_customers_are_not_blocked(done: tuple[Run, dict[str, Any]]) -> None:
    finished, figures = done
    assert figures["payments"] == len(finished.arrivals) > 250
    assert figures["good_with_history"] > 0.5 * figures["payments"]
    assert figures["good_blocked"] < 0.005 * figures["payments"]
    assert figures["good_blocked_with_history"] == 0
    # customers abroad paying a sizeable amount are asked for 3-D Secure, and pass it
    assert figures["good_challenged"] > 0
    assert figures["requires_action"] == 0
    # the attacks are not the good customers' payments: their figures stay their own
    assert figures["succeeded"] + figures["failed"] == figures["payments"]
    assert figures["lost_payments"] == figures["duplicate_charges"] == 0


def test_good_customers_opened_their_accounts_before_the_run(
    done: tuple[Run, dict[str, Any]],
) -> None:
    """Most months or years before it, about `new_customers` (0.1) of them in its last
    month; a taken-over account is the victim's, opened when they opened it."""
    finished, _ = done
    fraud = finished.fraud
    assert fraud is not None and fraud.start is not None
    ages: dict[str, float] = {}
    for a in finished.arrivals:
        since = datetime.fromisoformat(fraud.signals(a)["customer_since"])
        ages[str(fraud.customer_id(a))] = (fraud.start - since).total_seconds() / 86400
    assert len(ages) == 60  # every customer paid
    new = [d for d in ages.values() if d <= NEW_DAYS]
    assert all(OLD_DAYS[0] <= d <= OLD_DAYS[1] for d in ages.values() if d > NEW_DAYS)
    assert 1 <= len(new) <= 15
    for a in fraud.arrivals:
        customer = fraud.customer_id(a)
        if customer is not None:  # an account takeover
            k = int(customer.removeprefix("cust-"))
            assert fraud.signals(a)["customer_since"] == fraud.customer_since(k)


def test_attacks_need_a_card_channel(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace("[card, alipay]", "[alipay]").replace("card: 0.8, ", ""))
    path.write_text(path.read_text().replace("alipay: 0.2", "alipay: 1.0"))
    with pytest.raises(DataFileError, match="card"):
        load_scenario(path)
