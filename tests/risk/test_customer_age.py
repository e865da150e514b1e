"""A customer's age is their account's (the shop's `customer_since`) or their first
payment's, whichever is older: an account opened a year ago is not a stranger on its
first payment here, and the score and limits follow it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paymend.risk.assess import history_features
from paymend.risk.features import base_features, subjects
from paymend.risk.rules import SHIPPED_RULES, load
from paymend.risk.score import History, limit, score

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def behaviour(since: str | None, first_payment_days: float) -> dict[str, Any]:
    metadata = {"customer_since": since} if since is not None else {}
    who = subjects("m1", "c1", None, metadata)
    base = base_features(
        amount=150_000,
        exponent=2,
        currency="CNY",
        method="card",
        bank=None,
        region=None,
        metadata=metadata,
        who=who,
        email=None,
        now=NOW,
    )
    customer = History(successes=3, age_days=first_payment_days)
    return history_features(base, {}, load(SHIPPED_RULES), customer, History(), False)


@pytest.mark.parametrize(
    ("since_days", "first_payment_days", "age"),
    [
        (400.0, 0.01, 400.0),  # an old account, paying here for the first time today
        (2.0, 90.0, 90.0),  # a wrong opening date does not make a known customer new
        (None, 5.0, 5.0),  # no opening date: the first payment's
        (30.0, -1.0, 30.0),  # no payment yet: the account's
    ],
)
def test_the_older_of_the_account_and_the_first_payment_counts(
    since_days: float | None, first_payment_days: float, age: float
) -> None:
    since = (NOW - timedelta(days=since_days)).isoformat() if since_days is not None else None
    got = behaviour(since, first_payment_days)
    assert got["customer_age_days"] == pytest.approx(age)
    expected = score(History(successes=3, age_days=age))
    assert got["score"] == expected
    assert got["customer_limit"] == round(limit(2000, expected), 2)


def test_an_old_account_earns_a_higher_limit_than_a_new_one() -> None:
    old = behaviour((NOW - timedelta(days=365)).isoformat(), 0.01)
    new = behaviour((NOW - timedelta(days=1)).isoformat(), 0.01)
    assert old["score"] == new["score"] + 10  # a year of age
    assert old["customer_limit"] > new["customer_limit"]


def test_an_unknown_age_stays_unknown() -> None:
    got = behaviour(None, -1.0)
    assert got["customer_age_days"] == -1.0
    assert got["score"] == score(History(successes=3))
