"""The behaviour score: how far a customer's (or a card's) history earns trust, and the
amount limits it moves.

A stranger scores 50. Successful payments raise it (up to +30), an old account a little
more (up to +10); refunds lower it a little, every chargeback or confirmed fraud a lot.
Limits follow the score on a doubling scale: 50 is the base limit, 75 twice it, 100 four
times, 25 half and 0 a quarter, so a good customer's larger orders pass while a card
with a chargeback is held to small ones.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class History:
    """What the store knows of a customer or a card before this payment."""

    successes: int = 0
    refunds: int = 0
    chargebacks: int = 0  # chargebacks and fraud reported through the API
    age_days: float = -1.0  # since first seen or opened; -1 unknown


def score(h: History) -> int:
    """0 (known fraud) .. 100 (long and clean history); 50 for a stranger."""
    value = 50.0
    value += min(h.successes, 15) * 2
    if h.age_days > 0:
        value += min(h.age_days / 36.5, 10.0)  # a year of age: +10
    value -= min(h.refunds, 5) * 2
    value -= h.chargebacks * 30
    return int(max(0.0, min(100.0, round(value))))


def limit(base_major: float, value: int) -> float:
    """The dynamic amount limit (major units) for a score: base x 2^((score-50)/25)."""
    return float(base_major * 2 ** ((value - 50) / 25))
