"""Velocity: what each card, customer, device, IP and email did over sliding windows.

A book keeps one `Seen` per payment and subject (when, how much, which card) and, once
the payment failed, whether it failed and with a fraud-like code. `aggregate` turns the
last 24 hours of them into the `<subject>_<metric>_<window>` features of
risk/features.py. Two books share it: the database's (store/risk.py `recent`, reading
the payments' own outcomes) and Redis's (risk/redis_velocity.py, sorted sets), so every
process counts the same payments. Both ask `counted_failure` what a failure is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from paymend.risk.features import CARD_HOLDERS, FRAUD_LIKE_CODES, METRICS, WINDOWS, Subjects

LONGEST_S = max(WINDOWS.values())
BLOCKED_CODE = "risk_declined"  # risk control's own block: fraud-like by definition
# failures that tell nothing of the customer: their bank could not be reached, in
# maintenance at the issuer or paused by ops (a paused bank's or region's payments are
# refused with this code before any call, engine/payments.py)
NOT_THE_CUSTOMERS = frozenset({"issuer_unavailable"})


def counted_failure(code: str | None) -> tuple[bool, bool]:
    """Whether a payment that ended failed with `code` counts against its subjects as
    a failure, and as a fraud-like one. Every book asks this, so a payment is counted
    alike in Redis and in the database, in every process."""
    if code in NOT_THE_CUSTOMERS:
        return False, False
    return True, code in FRAUD_LIKE_CODES or code == BLOCKED_CODE


@dataclass(frozen=True, slots=True)
class Seen:
    """One earlier payment of one subject."""

    payment_id: str
    at: float  # epoch seconds
    amount_major: float
    currency: str
    card: str
    failed: bool = False
    fraud: bool = False  # declined with a fraud-like code


class VelocityBook(Protocol):
    """Where the counters live. `seen` is told of a payment as it is assessed; `settled`
    of its failure (the database's book reads outcomes from the payments instead).

    A book that cannot be reached answers `history` with None (the payments' own rows
    are read instead) and `seen`/`settled` with False (that count is lost, not the
    payment): risk control degrades, the checkout never stops for it."""

    def history(self, who: Subjects, now: datetime) -> Mapping[str, Iterable[Seen]] | None: ...

    def seen(
        self, payment_id: str, who: Subjects, amount_major: float, currency: str, now: datetime
    ) -> bool: ...

    def settled(self, payment_id: str, who: Subjects, fraud: bool, now: datetime) -> bool: ...


def aggregate(
    history: Mapping[str, Iterable[Seen]], now: datetime, currency: str, exclude: str = ""
) -> dict[str, float]:
    """The velocity features from each subject's payments (`exclude`: the payment being
    assessed, if the book has it already). Amounts are summed in the payment's currency."""
    t = now.timestamp()
    out: dict[str, float] = {}
    for subject, rows in history.items():
        kept = [r for r in rows if r.payment_id != exclude and t - r.at <= LONGEST_S]
        for window, seconds in WINDOWS.items():
            inside = [r for r in kept if t - r.at <= seconds]
            values = {
                "count": float(len(inside)),
                "amount": sum(r.amount_major for r in inside if r.currency == currency),
                "failed": float(sum(r.failed for r in inside)),
                "fraud": float(sum(r.fraud for r in inside)),
            }
            for metric in METRICS:
                out[f"{subject}_{metric}_{window}"] = values[metric]
            if subject in CARD_HOLDERS:
                out[f"{subject}_cards_{window}"] = float(len({r.card for r in inside if r.card}))
    return out
