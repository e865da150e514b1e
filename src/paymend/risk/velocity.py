"""Velocity: what each card, customer, device, IP and email did over sliding windows.

A book keeps one `Seen` per payment and subject (when, how much, which card) and, once
the payment failed, whether it failed and with a fraud-like code. `aggregate` turns the
last 24 hours of them into the `<subject>_<metric>_<window>` features of
risk/features.py. Two books share it: the database's (store/risk_assessment.py
`read`, reading the payments' own outcomes) and Redis's (risk/redis_velocity.py, sorted
sets), so every process counts the same payments. Both ask `counted_failure` what a
failure is: Redis's as each payment ends, the database's by its codes (UNCOUNTED,
FRAUD_LIKE), placing each row in its window itself for `count_bands` to add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

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


# the windows narrowest first: the order of the database's bands (`count_bands`)
ASCENDING: tuple[tuple[str, int], ...] = tuple(sorted(WINDOWS.items(), key=lambda w: w[1]))
# how far back each window starts, narrowest first
REACHES = tuple(timedelta(seconds=seconds) for _, seconds in ASCENDING)
# the failure codes the database's rows count as no failure, and as fraud-like: what
# `counted_failure` says, for the database to work out itself
UNCOUNTED = tuple(sorted(NOT_THE_CUSTOMERS))
FRAUD_LIKE = tuple(sorted((FRAUD_LIKE_CODES | {BLOCKED_CODE}) - NOT_THE_CUSTOMERS))


def count_bands(rows: Iterable[Sequence[Any]], subjects: Sequence[str]) -> dict[str, float]:
    """`tally`'s figures from the database's velocity rows, each already placed by the
    database (store/risk_assessment.py `read`): (band, amount, card, shared, failure),
    where band is the narrowest window of ASCENDING the payment is inside, amount its
    amount if in the payment's currency (else None), shared bit i set if it is the i-th
    subject's, and failure 0 (none that counts), 1 (a failure) or 2 (a fraud-like one).
    One pass, in the rows' order, so every sum is added up in the order `tally` adds
    it: a busy subject (an IP a carrier's NAT shares) has thousands of rows a day."""
    # per subject seen, per window narrowest first: count, amount, failed, fraud, cards
    figures: dict[str, list[list[Any]]] = {}
    into_of: dict[int, list[list[list[Any]]]] = {}  # by `shared`: its subjects' figures
    for band, amount, card, shared, failure in rows:
        into = into_of.get(shared)
        if into is None:
            into = into_of[shared] = [
                figures.setdefault(s, [[0, 0, 0, 0, set()] for _ in ASCENDING])
                for i, s in enumerate(subjects)
                if shared & (1 << i)
            ]
        for windows in into:
            for f in windows[band:]:  # its window and every wider one
                f[0] += 1
                if amount is not None:
                    f[1] += amount
                if failure:
                    f[2] += 1
                    if failure == 2:
                        f[3] += 1
                if card:
                    f[4].add(card)
    out: dict[str, float] = {}
    for subject in subjects:
        counted = figures.get(subject)
        if counted is None:  # none of the rows: every figure 0, as `tally` gives it
            out.update(_ZEROS[subject])
            continue
        for names, (count, amount, failed, fraud, cards) in zip(
            _ASCENDING_NAMES[subject], counted, strict=True
        ):
            out[names[0]], out[names[1]] = float(count), amount
            out[names[2]], out[names[3]] = float(failed), float(fraud)
            if names[4]:
                out[names[4]] = float(len(cards))
    return out


# per subject, per window narrowest first: its features' names (as _NAMES), and every
# figure of a subject with no payment in its windows
_ASCENDING_NAMES = {
    subject: tuple(names[1:] for names in reversed(_NAMES[subject])) for subject in SUBJECTS
}
assert all(
    [n[0] for n in _ASCENDING_NAMES[s]] == [f"{s}_count_{w}" for w, _ in ASCENDING]
    for s in SUBJECTS
), "_NAMES is widest first"
_ZEROS: dict[str, dict[str, float]] = {
    subject: {
        name: 0 if metric == 1 else 0.0  # an amount of nothing: the integer 0, as sum()'s
        for names in _ASCENDING_NAMES[subject]
        for metric, name in enumerate(names)
        if name
    }
    for subject in SUBJECTS
}


def _oldest(aged: list[tuple[float, Seen]]) -> float:
    return max([age for age, _ in aged]) if aged else 0.0
