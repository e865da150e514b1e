"""The database's velocity rows count what velocity's definition counts.

store/risk_assessment.py `read` places each earlier decision in its narrowest window,
works out its amount in the payment's currency and what its failure counts as, and
risk/velocity.py `count_bands` adds the rows up. For any decisions and outcomes, the
figures are the ones `aggregate` (the Redis book's, whose definition
tests/risk/test_velocity_aggregate.py holds) gives for the same payments, on SQLite and
PostgreSQL, windows' edges included."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paymend.engine.risk_gate import velocity_ask
from paymend.risk.features import SUBJECTS, WINDOWS
from paymend.risk.velocity import (
    Seen,
    aggregate,
    count_bands,
    counted_failure,
)
from paymend.store import risk_assessment as assessment
from paymend.store.database import Connection, Store
from paymend.store.tables import payments, risk_decisions
from tests.helpers import make_merchant
from tests.store.rows import payment_row

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # whole seconds: ages below add up exactly
# ages around every window's edge (the edge itself included), and past the longest
AGES = sorted({0.0, 1.5, *(s + d for s in WINDOWS.values() for d in (-0.5, 0.0, 0.5)), 9e4})
# None: the payment did not fail; "": it failed without a code
OUTCOMES = [
    None,
    "",
    "insufficient_funds",
    "issuer_unavailable",
    "suspected_fraud",
    "risk_declined",
]
_RUN = itertools.count()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


earlier = st.fixed_dictionaries(
    {
        "age": st.sampled_from(AGES),
        # quarters: any order of adding them up gives the same sum, so the rows' order,
        # which the database's plan sets, does not matter here
        "amount": st.integers(min_value=1, max_value=4_000_000).map(lambda q: q / 4),
        "currency": st.sampled_from(["CNY", "USD"]),
        "card": st.sampled_from(["", "fp-1", "fp-2", "fp-3"]),
        "shares": st.sets(st.sampled_from(SUBJECTS)),
        "outcome": st.sampled_from(OUTCOMES),
    }
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example's own keys
)
@given(
    rows=st.lists(earlier, max_size=12),
    asked=st.sets(st.sampled_from(SUBJECTS), min_size=1),
    exclude_first=st.booleans(),
)
def test_the_rows_count_as_velocity_is_defined(
    store: Store, rows: list[dict[str, Any]], asked: set[str], exclude_first: bool
) -> None:
    run = next(_RUN)
    mid, _ = make_merchant(store, f"v{run}")
    value = {s: f"{s}-{run}" for s in SUBJECTS}  # the payment's own, this example's only
    pairs = [(s, value[s]) for s in SUBJECTS if s in asked]
    decisions, failed = [], []
    history: dict[str, list[Seen]] = {s: [] for s, _ in pairs}
    for i, r in enumerate(rows):
        pid = f"pay_v{run}_{i}"
        at = NOW - timedelta(seconds=r["age"])
        card = value["card"] if "card" in r["shares"] else r["card"]
        decisions.append(_decision(pid, mid, at, card, r, value))
        if r["outcome"] is not None:
            code = r["outcome"] or None
            failed.append(payment_row(pid, merchant_id=mid, status="failed", failure_code=code))
        counts, fraud = counted_failure(r["outcome"] or None)
        fails = r["outcome"] is not None and counts
        seen = Seen(pid, at.timestamp(), r["amount"], r["currency"], card, fails, fails and fraud)
        for subject, _ in pairs:
            if subject in r["shares"]:
                history[subject].append(seen)
    exclude = f"pay_v{run}_0" if exclude_first else ""

    def read(conn: Connection) -> dict[str, float]:
        if failed:
            conn.execute(payments.insert(), failed)
        if decisions:
            conn.execute(risk_decisions.insert(), decisions)
        ask = velocity_ask(NOW, "CNY", exclude)
        found, _ = assessment.read(conn, pairs, ask, None)
        return count_bands(found, [s for s, _ in pairs])

    got = store.run_sync(read)
    want = aggregate(history, NOW, "CNY", exclude=exclude)
    assert got == want
    # the same types too: an amount of nothing is the integer 0, as `aggregate`'s
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}


def _decision(
    pid: str, mid: str, at: datetime, card: str, r: dict[str, Any], value: dict[str, str]
) -> dict[str, Any]:
    """A stored decision sharing `r["shares"]` with the payment (other keys: its own)."""
    keys = {s: value[s] if s in r["shares"] else f"{s}-other-{pid}" for s in SUBJECTS}
    return {
        "payment_id": pid,
        "merchant_id": mid,
        "verdict": "allow",
        "rules_version": "test",
        "score": 0,
        "fired": [],
        "features": {},
        "shadow_verdict": None,
        "card": card,
        "customer_id": keys["customer"],
        "device": keys["device"],
        "ip": keys["ip"],
        "email": keys["email"],
        "amount_major": r["amount"],
        "currency": r["currency"],
        "created_at": at,
    }
