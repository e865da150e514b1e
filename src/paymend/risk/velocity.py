"""Velocity: what each card, customer, device, IP and email did over sliding windows.

A book keeps one `Seen` per payment and subject (when, how much, which card) and, once
the payment failed, whether it failed and with a fraud-like code. `aggregate` turns the
last 24 hours of them into the `<subject>_<metric>_<window>` features of
risk/features.py. Two books share it: the database's (store/risk.py `read`, reading
the payments' own outcomes) and Redis's (risk/redis_velocity.py, sorted sets), so every
process counts the same payments. Both ask `counted_failure` what a failure is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple, Protocol

from paymend.risk.features import (
    CARD_HOLDERS,
    FRAUD_LIKE_CODES,
    METRICS,
    SUBJECTS,
    WINDOWS,
    Subjects,
)

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


class Seen(NamedTuple):
    """One earlier payment of one subject. (A named tuple: a payment reads back a dozen
    or more, and one is made three times faster than a frozen dataclass.)"""

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


# per subject, per window from the widest: its seconds and its features' names (METRICS,
# then the distinct cards, "" for the card itself), built once
_NAMES: dict[str, tuple[tuple[int, str, str, str, str, str], ...]] = {
    subject: tuple(
        (
            seconds,
            f"{subject}_count_{window}",
            f"{subject}_amount_{window}",
            f"{subject}_failed_{window}",
            f"{subject}_fraud_{window}",
            f"{subject}_cards_{window}" if subject in CARD_HOLDERS else "",
        )
        for window, seconds in sorted(WINDOWS.items(), key=lambda w: -w[1])
    )
    for subject in SUBJECTS
}
assert METRICS == ("count", "amount", "failed", "fraud"), "aggregate's figures, in order"


def aggregate(
    history: Mapping[str, Iterable[Seen]], now: datetime, currency: str, exclude: str = ""
) -> dict[str, float]:
    """The velocity features from each subject's payments (`exclude`: the payment being
    assessed, if the book has it already). Amounts are summed in the payment's currency,
    in the book's order."""
    t = now.timestamp()
    aged = {
        s: [(t - r.at, r) for r in rows if r.payment_id != exclude] for s, rows in history.items()
    }
    return tally(aged, currency)


def tally(aged: Mapping[str, list[tuple[float, Seen]]], currency: str) -> dict[str, float]:
    """`aggregate`'s figures from each subject's payments paired with their age in
    seconds, in the book's order (a book whose rows serve several subjects works each
    age out once, engine/risk_gate.py).

    The windows are nested, so each is read from the next wider one, and a window that
    holds the same payments as the wider one (none of them older than it) takes its
    figures: a burst inside the last ten minutes is counted once, not three times."""
    out: dict[str, float] = {}
    for subject, inside in aged.items():
        oldest = _oldest(inside)
        figures: tuple[float, float, float, float, float] | None = None
        for seconds, count, amount, failed, fraud, cards in _NAMES[subject]:
            if oldest > seconds:  # some fall out of this window: the wider one's figures
                inside = [e for e in inside if e[0] <= seconds]  # are not its own
                oldest, figures = _oldest(inside), None
            if figures is None:
                figures = (
                    float(len(inside)),
                    sum([r.amount_major for _, r in inside if r.currency == currency]),
                    float(len([r for _, r in inside if r.failed])),
                    float(len([r for _, r in inside if r.fraud])),
                    float(len({r.card for _, r in inside if r.card})),
                )
            out[count], out[amount], out[failed], out[fraud], distinct = figures
            if cards:
                out[cards] = distinct
    return out


def _oldest(aged: list[tuple[float, Seen]]) -> float:
    return max([age for age, _ in aged]) if aged else 0.0
