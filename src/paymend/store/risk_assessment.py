"""Risk control's read of each payment's assessment: the velocity rows and what the store
knows of the customer, their device and the card, in one statement (`read`). Plain rows
out (the store knows nothing of the risk room; engine/risk_gate.py asks and turns them
into risk's types); store/risk.py writes the decisions they are read from."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.utc_text import sqlite_texter
from paymend.store.prepared import Prepared
from paymend.store.tables import UTCDateTime, one_of

SUCCEEDED = ("succeeded", "partially_refunded", "refunded")
REFUNDED = ("partially_refunded", "refunded")


# The reads of every payment's assessment are SQL text, one statement per shape (which
# subjects, which list kinds): standard SQL, the same on SQLite and PostgreSQL; column
# names come from SUBJECT_NAMES only, values are bound. Its columns are declared in
# order with their types, which convert each row's values (store/prepared.py). Without
# Redis a payment needs both the velocity rows and the history: `read` asks for them in
# one statement.
SUBJECT_NAMES = {
    "card": "card",
    "customer": "customer_id",
    "device": "device",
    "ip": "ip",
    "email": "email",
}


# a velocity row: the narrowest window it is inside (0: the first of VelocityAsk's
# starts, and so on; the widest is how far back rows are read), its amount if it is in
# the payment's currency (else NULL), its card, which of the subjects asked it shares
# (bit i: the i-th), and what its payment's failure counts as: 0 nothing (it did not
# fail, or with a code that tells nothing of the customer), 1 a failure, 2 a fraud-like
# one
VELOCITY_COLUMNS = ("band", "amount", "card", "shared", "failure")


class Counting(NamedTuple):
    """How velocity rows' failures are counted: the codes that count as none, those that
    count as fraud-like (written into the statement's text: codes of the catalogue,
    never data, and refused unless they look like one)."""

    uncounted: tuple[str, ...]
    fraud_like: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VelocityAsk:
    """What a payment's velocity rows are read for: the windows' starts, narrowest first
    (the last, the widest, is how far back they are read), the payment's currency, the
    payment itself (left out, should its decision be stored already), and how their
    failures are counted."""

    starts: tuple[datetime, ...]
    currency: str
    exclude: str
    counting: Counting

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = dict(zip(_start_names(len(self.starts)), self.starts, strict=True))
        params["currency"], params["exclude"] = self.currency, self.exclude
        return params


_CODE = re.compile(r"[a-z0-9_]+")


@functools.cache
def _start_names(windows: int) -> tuple[str, ...]:
    """The starts' parameters, narrowest first: `w_<rank>`, and `since` the widest's."""
    return (*(f"w_{i}" for i in range(windows - 1)), "since")


def _recent_select(
    subjects: tuple[str, ...], sqlite: bool, windows: int, counting: Counting
) -> str:
    """The velocity rows' SELECT over `windows` windows; a subject's value is bound as
    `v_<subject>`, each window's start as `_start_names` says.

    Each row's window, amount and failure are worked out here, by comparing times and
    codes, so that Python only adds them up: a busy subject (an IP a carrier's NAT
    shares) has thousands of rows a day, and each row's datetime and code made into
    Python objects cost more than the comparisons. Whether a row's payment failed is
    asked of the failed payments' partial index (migration 0025), a few per cent of the
    payments, not of the payments' id index and rows. SQLite's planner would take the
    unique id index for the join, so the query names the index (INDEXED BY: were it
    ever dropped, the query fails rather than silently reading the rows again);
    PostgreSQL's planner weighs both itself."""
    odd = [c for c in (*counting.uncounted, *counting.fraud_like) if not _CODE.fullmatch(c)]
    if odd:
        raise ValueError(f"not failure codes: {odd}")
    names = [(SUBJECT_NAMES[s], f":v_{s}") for s in subjects]
    shared = " + ".join(
        f"CASE WHEN rd.{c} = {v} THEN {1 << i} ELSE 0 END" for i, (c, v) in enumerate(names)
    )
    match = " OR ".join(f"rd.{c} = {v}" for c, v in names)
    bands = " ".join(f"WHEN rd.created_at >= :w_{i} THEN {i}" for i in range(windows - 1))
    failure = "WHEN p.id IS NULL THEN 0 "
    if counting.uncounted:
        failure += f"WHEN {one_of('p.failure_code', counting.uncounted)} THEN 0 "
    if counting.fraud_like:
        failure += f"WHEN {one_of('p.failure_code', counting.fraud_like)} THEN 2 "
    return (
        f"SELECT {f'CASE {bands} ELSE {windows - 1} END' if bands else '0'}, "  # noqa: S608 - names from SUBJECT_NAMES, codes from the risk room
        "CASE WHEN rd.currency = :currency THEN rd.amount_major END, "
        f"rd.card, {shared}, CASE {failure}ELSE 1 END FROM risk_decisions rd "
        f"LEFT JOIN payments p {'INDEXED BY ix_payments_failed ' if sqlite else ''}"
        "ON p.id = rd.payment_id AND p.status = 'failed' "
        f"WHERE rd.created_at >= :since AND rd.payment_id <> :exclude AND ({match})"
    )


LIST_KINDS = ("card", "email", "device", "ip")
# How far back a customer's and a card's successes and refunds are counted: their last
# this many payments. Counting all of them read every payment of a customer's history
# for each new one (a customer with 1,000 earlier payments made the read ten times
# slower); the score they feed counts no more than 15 successes and 5 refunds
# (risk/score.py), and a rule sees the figures of this recent history.
HISTORY_DEPTH = 50

# Each figure is read where an index answers it, at a cost that does not grow with the
# history: the customer's last HISTORY_DEPTH payments once (their successes and refunds
# in one pass, not two), their first payment from the index's first entry; whether the
# customer was decided on before, and on this device, as EXISTS (the first index entry
# answers: a count grew with the customer's history, and was only ever asked whether it
# is 0).
# A figure whose key the payment lacks is a constant, not a sub-query of a NULL key.
# A payment without a card once bound its card as NULL; where most decisions have no
# card, PostgreSQL's one plan for any card (its generic plan) scans them all, so it
# planned the statement afresh at every run: 0.5 ms of the server's time a payment.
_CUSTOMER = (
    "c.successes, c.refunds, c.first, "
    "(SELECT count(*) FROM risk_reports WHERE merchant_id = :merchant"
    " AND customer_id = :customer) AS chargebacks"
)
_NO_CUSTOMER = "0 AS successes, 0 AS refunds, NULL AS first, 0 AS chargebacks"
_DECIDED = "EXISTS (SELECT 1 FROM risk_decisions WHERE customer_id = :key) AS decided"
_ON_DEVICE = (
    "EXISTS (SELECT 1 FROM risk_decisions WHERE customer_id = :key"
    " AND device = :device) AS on_device"
)
_CARD = (  # CROSS JOIN: SQLite keeps the join's order, the last decisions read as they
    # come (joined the other way, it would put them in a temporary b-tree first)
    "(SELECT count(*) FROM (SELECT payment_id FROM risk_decisions WHERE card = :card"  # noqa: S608 - constants only
    f" ORDER BY created_at DESC LIMIT {HISTORY_DEPTH}) rd CROSS JOIN payments p"
    f" WHERE p.id = rd.payment_id AND ({one_of('p.status', SUCCEEDED)})) AS card_successes, "
    "(SELECT count(*) FROM risk_reports WHERE card = :card) AS card_chargebacks"
)
_NO_CARD = "0 AS card_successes, 0 AS card_chargebacks"
_CUSTOMER_FROM = (
    " FROM (SELECT"  # noqa: S608 - constants only
    f" count(CASE WHEN {one_of('status', SUCCEEDED)} THEN 1 END) AS successes,"
    f" count(CASE WHEN {one_of('status', REFUNDED)} THEN 1 END) AS refunds,"
    " (SELECT min(created_at) FROM payments"
    " WHERE merchant_id = :merchant AND customer_id = :customer) AS first"
    " FROM (SELECT status FROM payments WHERE merchant_id = :merchant"
    f" AND customer_id = :customer ORDER BY created_at DESC LIMIT {HISTORY_DEPTH}) r) c"
)
HISTORY_COLUMNS = (
    "successes",
    "refunds",
    "first",
    "chargebacks",
    "decided",
    "on_device",
    "card_successes",
    "card_chargebacks",
)


class _Start(UTCDateTime):
    """A window's start, bound as UTCDateTime binds, but on SQLite each parameter with a
    formatter of its own (domain/utc_text.py `sqlite_texter`): a payment binds three,
    ten minutes, an hour and a day before its time, and the shared formatter keeps the
    text of one second only, which the payment's own times then take back."""

    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        text = sqlite_texter()

        def start(value: datetime) -> str:
            if value.tzinfo is None:  # as UTCDateTime refuses it
                raise ValueError("naive datetime given to the store")
            return text(value)

        return start


_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "first": UTCDateTime(),
    "decided": sa.Boolean(),
    "on_device": sa.Boolean(),
}


def _histories_select(kinds: tuple[str, ...], keys: frozenset[str]) -> str:
    """The history SELECT of the keys the payment has (`keys`: of customer, key,
    device, card; see HistoryKeys) with a list lookup for each of `kinds` (the kinds the
    payment has a value for), as `list_<kind>` after HISTORY_COLUMNS."""
    key = "key" in keys
    figures = [
        _CUSTOMER if "customer" in keys else _NO_CUSTOMER,
        _DECIDED if key else "false AS decided",
        _ON_DEVICE if key and "device" in keys else "false AS on_device",
        _CARD if "card" in keys else _NO_CARD,
    ]
    figures += [
        f"(SELECT action FROM risk_lists WHERE kind = '{k}' AND value = :l_{k}) AS list_{k}"  # noqa: S608 - kinds
        for k in kinds
    ]
    return f"SELECT {', '.join(figures)}{_CUSTOMER_FROM if 'customer' in keys else ''}"


@functools.cache
def _read_prepared(
    subjects: tuple[str, ...],
    kinds: tuple[str, ...] | None,
    keys: frozenset[str],
    sqlite: bool,
    velocity_shape: tuple[int, Counting] | None,
) -> Prepared:
    """The statement `read` runs, on the driver's cursor (store/prepared.py): the history
    (None: not asked) and the velocity rows of `subjects` (none: not asked) in one
    result, the history's row with NULL in the velocity columns, each velocity row with
    NULL in the history's (the history's row joined to every velocity row, as before,
    cost SQLite about 15 % more). `velocity_shape`: the number of windows and how
    failures are counted (None: no velocity rows)."""
    history = () if kinds is None else HISTORY_COLUMNS + tuple(f"list_{k}" for k in kinds)
    velocity = VELOCITY_COLUMNS if velocity_shape is not None else ()
    if velocity_shape is None:
        text = _histories_select(kinds or (), keys)
    elif not history:
        text = _recent_select(subjects, sqlite, *velocity_shape)
    else:
        text = (
            f"SELECT h.*, {', '.join(['NULL'] * len(velocity))} "  # noqa: S608 - see above
            f"FROM ({_histories_select(kinds or (), keys)}) h UNION ALL "
            f"SELECT {', '.join(['NULL'] * len(history))}, v.* "
            f"FROM ({_recent_select(subjects, sqlite, *velocity_shape)}) v"
        )
    query = sa.text(text)
    if velocity_shape is not None:
        starts = _start_names(velocity_shape[0])
        query = query.bindparams(*(sa.bindparam(b, type_=_Start()) for b in starts))
    return Prepared(query.columns(*(sa.column(c, _TYPES.get(c)) for c in (*history, *velocity))))


@dataclass(frozen=True, slots=True)
class HistoryKeys:
    """Whom a payment's history is asked of (see `read`)."""

    merchant_id: str
    customer_id: str
    customer_key: str
    device: str
    card: str
    listed: Sequence[tuple[str, str]] = ()

    def params(self) -> tuple[tuple[str, ...], frozenset[str], dict[str, Any]]:
        """The list kinds asked, the keys given (an empty one counts nothing: the
        statement leaves its figures out) and the statement's parameters."""
        wanted = {k: v for k, v in self.listed if v and k in LIST_KINDS}
        given = {
            "customer": self.customer_id,
            "key": self.customer_key,
            "device": self.device,
            "card": self.card,
        }
        present = {k: v for k, v in given.items() if v}
        params: dict[str, Any] = {**present, **{f"l_{k}": v for k, v in wanted.items()}}
        if self.customer_id:
            params["merchant"] = self.merchant_id
        return tuple(k for k in LIST_KINDS if k in wanted), frozenset(present), params


def read(
    conn: Connection,
    subjects: Sequence[tuple[str, str]],
    ask: VelocityAsk | None,
    keys: HistoryKeys | None,
) -> tuple[list[tuple[Any, ...]], dict[str, Any] | None]:
    """One payment's assessment, in one statement: the velocity rows and the history.

    Velocity rows (none: `ask` is None) are the other decisions inside the widest of
    `ask`'s windows that share a subject ((subject, value) pairs) with this payment,
    as tuples of VELOCITY_COLUMNS (`shared`: bit i set if it shares the i-th subject).
    The history (None: `keys` is None) is what the store knows of the customer (the
    merchant's `customer_id`, counted in the risk tables under `customer_key`), their
    device and the card: the customer's successes, refunds, chargebacks and first
    payment; whether they were decided on before, and on this device; the card's
    successes and chargebacks; and for each (kind, value) of `keys.listed` the action of
    its list entry, if any, as `list_<kind>`. An empty key counts nothing: its figures
    are zero (false, no first payment), so a payment without a card does not count
    every decision without one."""
    names = tuple(s for s, _ in subjects) if ask is not None else ()
    kinds, given, params = keys.params() if keys is not None else (None, frozenset(), {})
    if kinds is None and not names:
        return [], None
    shape = None
    if names and ask is not None:
        shape = (len(ask.starts), ask.counting)
        params.update(ask.params())
        params.update({f"v_{s}": v for s, v in subjects})
    statement = _read_prepared(names, kinds, given, conn.dialect.name == "sqlite", shape)
    rows = statement.all(conn, params)
    if kinds is None:
        return rows, None
    width = len(HISTORY_COLUMNS) + len(kinds)
    velocity, history = [], {}
    for r in rows:
        if names and r[width] is not None:
            velocity.append(r[width:])
        else:
            history = dict(zip((*HISTORY_COLUMNS, *(f"list_{k}" for k in kinds)), r, strict=False))
    return velocity, history
