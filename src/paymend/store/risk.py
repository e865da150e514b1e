"""Risk control's repository: decisions, the rows velocity is counted from, customer and
card history, lists and fraud reports. Plain rows in and out (the store knows nothing of
the risk room); engine/risk_gate.py turns them into risk's types."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from paymend.domain.errors import NotFound
from paymend.store.tables import UTCDateTime, payments, risk_decisions, risk_lists, risk_reports

SUCCEEDED = ("succeeded", "partially_refunded", "refunded")
REFUNDED = ("partially_refunded", "refunded")


_RECORD = risk_decisions.insert()  # built once: every payment stores its decision


def record(conn: Connection, row: dict[str, Any]) -> None:
    """Store one payment's decision (the row's keys are risk_decisions' columns)."""
    conn.execute(_RECORD, row)


def decision(conn: Connection, payment_id: str) -> dict[str, Any] | None:
    found = conn.execute(
        sa.select(risk_decisions).where(risk_decisions.c.payment_id == payment_id)
    ).first()
    return dict(found._mapping) if found else None


def decisions_of(conn: Connection, payment_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The decisions of these payments (a page of a list): what their views show."""
    if not payment_ids:
        return []
    rd = risk_decisions
    columns = (rd.c.payment_id, rd.c.verdict, rd.c.fired, rd.c.score, rd.c.rules_version)
    rows = conn.execute(sa.select(*columns).where(rd.c.payment_id.in_(list(payment_ids))))
    return [dict(r._mapping) for r in rows]


# The reads of every payment's assessment are written as SQL text, built once per shape:
# a Core statement this size costs more to build and key for its cache than to run
# (bench/risk.py). Standard SQL, the same on SQLite and PostgreSQL; column names come
# from SUBJECT_NAMES only, values are bound. Without Redis a payment needs both the
# velocity rows and the history: `assessment` reads them in one statement.
SUBJECT_NAMES = {
    "card": "card",
    "customer": "customer_id",
    "device": "device",
    "ip": "ip",
    "email": "email",
}
_STATUSES = ", ".join(f"'{v}'" for v in SUCCEEDED)
_REFUNDS = ", ".join(f"'{v}'" for v in REFUNDED)
_RECENT_KEYS = ", ".join(f"rd.{SUBJECT_NAMES[s]} AS k_{s}" for s in SUBJECT_NAMES)


def _recent_select(subjects: tuple[str, ...]) -> str:
    """The velocity rows' SELECT; a subject's value is bound as `v_<subject>`."""
    match = " OR ".join(f"rd.{SUBJECT_NAMES[s]} = :v_{s}" for s in subjects)
    return (
        f"SELECT rd.payment_id, rd.created_at, rd.amount_major, rd.currency, {_RECENT_KEYS}, "  # noqa: S608 - names from SUBJECT_NAMES
        "p.status, p.failure_code FROM risk_decisions rd "
        "JOIN payments p ON p.id = rd.payment_id "
        f"WHERE rd.created_at >= :since AND ({match})"
    )


@functools.cache
def _recent_sql(subjects: tuple[str, ...]) -> sa.TextualSelect:
    return (
        sa.text(_recent_select(subjects))
        .bindparams(sa.bindparam("since", type_=UTCDateTime()))
        .columns(created_at=UTCDateTime())
    )


def _recent_params(subjects: Sequence[tuple[str, str]], since: datetime) -> dict[str, Any]:
    return {"since": since, **{f"v_{s}": v for s, v in subjects}}


def recent(
    conn: Connection, subjects: Sequence[tuple[str, str]], since: datetime
) -> list[dict[str, Any]]:
    """The decisions of the last window that share a subject with this payment, each with
    its payment's status and failure code: velocity's raw rows."""
    if not subjects:
        return []
    query = _recent_sql(tuple(s for s, _ in subjects))
    rows = conn.execute(query, _recent_params(subjects, since))
    return [dict(r._mapping) for r in rows]


LIST_KINDS = ("card", "email", "device", "ip")


_HISTORIES = (
    "SELECT "  # noqa: S608 - constants only
    "(SELECT count(*) FROM payments WHERE merchant_id = :merchant AND customer_id = :customer"
    f" AND status IN ({_STATUSES})) AS successes, "
    "(SELECT count(*) FROM payments WHERE merchant_id = :merchant AND customer_id = :customer"
    f" AND status IN ({_REFUNDS})) AS refunds, "
    "(SELECT min(created_at) FROM payments WHERE merchant_id = :merchant"
    " AND customer_id = :customer) AS first, "
    "(SELECT count(*) FROM risk_reports WHERE merchant_id = :merchant"
    " AND customer_id = :customer) AS chargebacks, "
    "(SELECT count(*) FROM risk_decisions WHERE customer_id = :key) AS decided, "
    "(SELECT count(*) FROM risk_decisions WHERE customer_id = :key"
    " AND device = :device) AS on_device, "
    "(SELECT count(*) FROM risk_decisions rd JOIN payments p ON p.id = rd.payment_id"
    f" WHERE rd.card = :card AND p.status IN ({_STATUSES})) AS card_successes, "
    "(SELECT count(*) FROM risk_reports WHERE card = :card) AS card_chargebacks"
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


def _histories_select(kinds: tuple[str, ...]) -> str:
    """The history SELECT with a list lookup for each of `kinds` (the kinds the payment
    has a value for)."""
    listed = "".join(
        f", (SELECT action FROM risk_lists WHERE kind = '{k}' AND value = :l_{k}) AS list_{k}"  # noqa: S608 - kinds
        for k in kinds
    )
    return _HISTORIES + listed


@functools.cache
def _histories_sql(kinds: tuple[str, ...]) -> sa.TextualSelect:
    return sa.text(_histories_select(kinds)).columns(first=UTCDateTime())


@functools.cache
def _assessment_sql(subjects: tuple[str, ...], kinds: tuple[str, ...]) -> sa.TextualSelect:
    """History and velocity rows in one statement: the history's one row joined to each
    velocity row, or alone (velocity's columns NULL) when there is none."""
    return (
        sa.text(
            f"SELECT h.*, v.* FROM ({_histories_select(kinds)}) h "  # noqa: S608 - see above
            f"LEFT JOIN ({_recent_select(subjects)}) v ON 1 = 1"
        )
        .bindparams(sa.bindparam("since", type_=UTCDateTime()))
        .columns(first=UTCDateTime(), created_at=UTCDateTime())
    )


@dataclass(frozen=True, slots=True)
class HistoryKeys:
    """Whom a payment's history is asked of (see `histories`)."""

    merchant_id: str
    customer_id: str
    customer_key: str
    device: str
    card: str
    listed: Sequence[tuple[str, str]] = ()

    def params(self) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The list kinds asked and the statement's parameters. An empty key is bound as
        NULL, which equals no row."""
        wanted = {k: v for k, v in self.listed if v and k in LIST_KINDS}
        params = {
            "merchant": self.merchant_id,
            "customer": self.customer_id or None,
            "key": self.customer_key or None,
            "device": self.device or None,
            "card": self.card or None,
            **{f"l_{k}": v for k, v in wanted.items()},
        }
        return tuple(k for k in LIST_KINDS if k in wanted), params


def histories(conn: Connection, keys: HistoryKeys) -> dict[str, Any]:
    """What the store knows of the customer (the merchant's `customer_id`, counted in
    the risk tables under `customer_key`), their device and the card, in one statement:
    the customer's successes, refunds, chargebacks and first payment; whether they have
    earlier decisions and one from this device; the card's successes and chargebacks;
    and for each (kind, value) of `listed` the action of its list entry, if any, as
    `list_<kind>`. An empty key counts nothing: it is bound as NULL, which equals no
    row, so a payment without a card does not count every decision without one."""
    kinds, params = keys.params()
    return dict(conn.execute(_histories_sql(kinds), params).one()._mapping)


def assessment(
    conn: Connection, subjects: Sequence[tuple[str, str]], since: datetime, keys: HistoryKeys
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`recent` and `histories` in one statement: the velocity rows and the history."""
    if not subjects:
        return [], histories(conn, keys)
    kinds, params = keys.params()
    query = _assessment_sql(tuple(s for s, _ in subjects), kinds)
    rows = [
        dict(r._mapping) for r in conn.execute(query, {**params, **_recent_params(subjects, since)})
    ]
    history = {k: v for k, v in rows[0].items() if k in HISTORY_COLUMNS or k.startswith("list_")}
    recent_rows = [
        {k: v for k, v in r.items() if k not in history}
        for r in rows
        if r["payment_id"] is not None
    ]
    return recent_rows, history


# -- lists ------------------------------------------------------------------------------


@functools.cache
def _listed_sql(kinds: tuple[str, ...]) -> sa.TextClause:
    match = " OR ".join(f"(kind = '{k}' AND value = :{k})" for k in kinds)
    return sa.text(f"SELECT kind, action FROM risk_lists WHERE {match}")  # noqa: S608 - kinds


def listed(conn: Connection, entries: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(kind, action) of every list entry among `entries` ((kind, value) pairs)."""
    wanted = {k: v for k, v in entries if v and k in LIST_KINDS}
    if not wanted:
        return []
    rows = conn.execute(_listed_sql(tuple(sorted(wanted))), wanted)
    return [(r.kind, r.action) for r in rows]


def add_entry(conn: Connection, entry: dict[str, Any]) -> dict[str, Any]:
    """Insert the entry for (kind, value), or replace the one there in place: it keeps
    its id, so the audit log's `risk_list:<id>` and an operator's link still name it.
    One statement, so two operators adding the same value at once both succeed."""
    rl = risk_lists
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    changed = {k: v for k, v in entry.items() if k not in ("kind", "value")}
    stmt = (
        dialect.insert(rl)
        .values(entry)
        .on_conflict_do_update(index_elements=[rl.c.kind, rl.c.value], set_=changed)
    )
    entry_id = conn.execute(stmt.returning(rl.c.id)).scalar_one()
    return {**entry, "id": entry_id}


def entries(conn: Connection, kind: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(risk_lists).order_by(risk_lists.c.id)
    if kind is not None:
        query = query.where(risk_lists.c.kind == kind)
    return [dict(r._mapping) for r in conn.execute(query)]


def remove_entry(conn: Connection, entry_id: int) -> dict[str, Any]:
    rl = risk_lists
    found = conn.execute(sa.select(rl).where(rl.c.id == entry_id)).first()
    if found is None:
        raise NotFound("risk_list_entry_not_found", f"no list entry {entry_id}")
    conn.execute(rl.delete().where(rl.c.id == entry_id))
    return dict(found._mapping)


# -- reports ----------------------------------------------------------------------------


def report(conn: Connection, row: dict[str, Any]) -> bool:
    """Store a fraud report; False if this payment already has one of this kind."""
    rr = risk_reports
    exists = conn.execute(
        sa.select(rr.c.id).where(rr.c.payment_id == row["payment_id"], rr.c.kind == row["kind"])
    ).first()
    if exists is not None:
        return False
    conn.execute(rr.insert(), row)
    return True


def reported(conn: Connection, payment_ids: Sequence[str]) -> set[str]:
    if not payment_ids:
        return set()
    rows = conn.execute(
        sa.select(risk_reports.c.payment_id).where(risk_reports.c.payment_id.in_(payment_ids))
    )
    return {r.payment_id for r in rows}


# -- backtest ---------------------------------------------------------------------------


def replayable(
    conn: Connection, since: datetime | None, limit: int = 100_000
) -> list[dict[str, Any]]:
    """Stored decisions (oldest first) with their payments' final status."""
    rd, p = risk_decisions, payments
    query = (
        sa.select(
            rd.c.payment_id,
            rd.c.verdict,
            rd.c.features,
            rd.c.fired,
            rd.c.rules_version,
            rd.c.created_at,
            p.c.status,
        )
        .select_from(rd.join(p, p.c.id == rd.c.payment_id))
        .order_by(rd.c.created_at, rd.c.payment_id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(rd.c.created_at >= since)
    return [dict(r._mapping) for r in conn.execute(query)]


def window_start(now: datetime, seconds: int) -> datetime:
    return now - timedelta(seconds=seconds)


def shadow_counts(conn: Connection, since: datetime | None) -> list[dict[str, Any]]:
    """Decisions with shadow matches, by rules version, live verdict and shadow verdict."""
    rd = risk_decisions
    query = (
        sa.select(rd.c.rules_version, rd.c.verdict, rd.c.shadow_verdict, sa.func.count().label("n"))
        .where(rd.c.shadow_verdict.is_not(None))
        .group_by(rd.c.rules_version, rd.c.verdict, rd.c.shadow_verdict)
        .order_by(rd.c.rules_version, rd.c.verdict, rd.c.shadow_verdict)
    )
    if since is not None:
        query = query.where(rd.c.created_at >= since)
    return [dict(r._mapping) for r in conn.execute(query)]
