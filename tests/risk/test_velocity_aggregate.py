"""Velocity's figures (risk/velocity.py `aggregate`) are what their definition says, for
any payments a book holds: per subject and window, the payments inside it (the one being
assessed left out), their amount in the payment's currency summed in the book's order,
the failed and fraud-like ones and the distinct cards. `aggregate` reads each window from
the next wider one; the definition below reads every window from scratch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.risk.features import CARD_HOLDERS, SUBJECTS, WINDOWS, velocity_names
from paymend.risk.velocity import LONGEST_S, Seen, aggregate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def defined(
    history: Mapping[str, Iterable[Seen]], now: datetime, currency: str, exclude: str
) -> dict[str, float]:
    t = now.timestamp()
    out: dict[str, float] = {}
    for subject, rows in history.items():
        kept = [r for r in rows if r.payment_id != exclude and t - r.at <= LONGEST_S]
        for window, seconds in WINDOWS.items():
            inside = [r for r in kept if t - r.at <= seconds]
            out[f"{subject}_count_{window}"] = float(len(inside))
            out[f"{subject}_amount_{window}"] = sum(
                r.amount_major for r in inside if r.currency == currency
            )
            out[f"{subject}_failed_{window}"] = float(sum(r.failed for r in inside))
            out[f"{subject}_fraud_{window}"] = float(sum(r.fraud for r in inside))
            if subject in CARD_HOLDERS:
                cards = {r.card for r in inside if r.card}
                out[f"{subject}_cards_{window}"] = float(len(cards))
    return out


# ages around every window's edge (the edge itself included), and beyond the longest
AGES = sorted({0.0, 1.5, *(s + d for s in WINDOWS.values() for d in (-0.5, 0.0, 0.5)), 9e5})

seen = st.builds(
    Seen,
    payment_id=st.sampled_from(["p1", "p2", "p3", "p4", "p5"]),
    at=st.sampled_from(AGES).map(lambda age: NOW.timestamp() - age),
    amount_major=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
    currency=st.sampled_from(["CNY", "USD"]),
    card=st.sampled_from(["", "fp-1", "fp-2", "fp-3"]),
    failed=st.booleans(),
    fraud=st.booleans(),
)
books = st.dictionaries(st.sampled_from(SUBJECTS), st.lists(seen, max_size=12))


@settings(max_examples=300, deadline=None)
@given(books, st.sampled_from(["", "p1", "p9"]))
def test_every_figure_is_its_definition(history: dict[str, list[Seen]], exclude: str) -> None:
    got = aggregate(history, NOW, "CNY", exclude=exclude)
    want = defined(history, NOW, "CNY", exclude)
    assert got == want
    # the same types too: a sum of nothing is the integer 0, as the definition's
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
    names = velocity_names()
    assert all(k in names for k in got)


def test_a_burst_inside_the_shortest_window_counts_in_every_window() -> None:
    t = NOW.timestamp()
    rows = [Seen(f"p{i}", t - 30 * i, 10.5, "CNY", f"fp-{i % 2}") for i in range(4)]
    old = Seen("p9", t - 2 * 3600, 100.0, "CNY", "fp-9", failed=True, fraud=True)
    got = aggregate({"ip": [*rows, old]}, NOW, "CNY")
    assert got["ip_count_10m"] == got["ip_count_1h"] == 4.0 and got["ip_count_24h"] == 5.0
    assert got["ip_amount_1h"] == 42.0 and got["ip_amount_24h"] == 142.0
    assert got["ip_cards_10m"] == 2.0 and got["ip_cards_24h"] == 3.0
    assert got["ip_fraud_1h"] == 0.0 and got["ip_fraud_24h"] == 1.0
