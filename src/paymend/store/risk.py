"""Risk control's repository: decisions, the rows velocity is counted from, customer and
card history, lists and fraud reports. Plain rows in and out (the store knows nothing of
the risk room); engine/risk_gate.py turns them into risk's types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import NotFound
from paymend.store.tables import payments, risk_decisions, risk_lists, risk_reports

SUCCEEDED = ("succeeded", "partially_refunded", "refunded")
REFUNDED = ("partially_refunded", "refunded")
SUBJECT_COLUMNS = {
    "card": risk_decisions.c.card,
    "customer": risk_decisions.c.customer_id,
    "device": risk_decisions.c.device,
    "ip": risk_decisions.c.ip,
    "email": risk_decisions.c.email,
}


def record(conn: Connection, row: dict[str, Any]) -> None:
    """Store one payment's decision (the row's keys are risk_decisions' columns)."""
    conn.execute(risk_decisions.insert(), row)


def decision(conn: Connection, payment_id: str) -> dict[str, Any] | None:
    found = conn.execute(
        sa.select(risk_decisions).where(risk_decisions.c.payment_id == payment_id)
    ).first()
    return dict(found._mapping) if found else None


def recent(
    conn: Connection, subjects: Sequence[tuple[str, str]], since: datetime
) -> list[dict[str, Any]]:
    """The decisions of the last window that share a subject with this payment, each with
    its payment's status and failure code: velocity's raw rows."""
    if not subjects:
        return []
    rd, p = risk_decisions, payments
    cols: list[Any] = [rd.c.payment_id, rd.c.created_at, rd.c.amount_major, rd.c.currency]
    cols += [rd.c.card, *(SUBJECT_COLUMNS[s].label(f"k_{s}") for s in SUBJECT_COLUMNS)]
    query = (
        sa.select(*cols, p.c.status, p.c.failure_code)
        .select_from(rd.join(p, p.c.id == rd.c.payment_id))
        .where(
            rd.c.created_at >= since,
            sa.or_(*[SUBJECT_COLUMNS[s] == v for s, v in subjects]),
        )
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def customer_history(conn: Connection, merchant_id: str, customer_id: str) -> dict[str, Any]:
    """Successes, refunds, chargebacks and the first payment of a merchant's customer."""
    p = payments
    row = conn.execute(
        sa.select(
            sa.func.count().filter(p.c.status.in_(SUCCEEDED)),
            sa.func.count().filter(p.c.status.in_(REFUNDED)),
            sa.func.min(p.c.created_at),
        ).where(p.c.merchant_id == merchant_id, p.c.customer_id == customer_id)
    ).one()
    reports = conn.execute(
        sa.select(sa.func.count()).where(
            risk_reports.c.merchant_id == merchant_id, risk_reports.c.customer_id == customer_id
        )
    ).scalar_one()
    first = row[2]
    if first is not None and first.tzinfo is None:  # an aggregate bypasses UTCDateTime
        first = first.replace(tzinfo=UTC)
    return {"successes": row[0], "refunds": row[1], "chargebacks": reports, "first": first}


def card_history(conn: Connection, card: str) -> dict[str, int]:
    rd, p = risk_decisions, payments
    successes = conn.execute(
        sa.select(sa.func.count())
        .select_from(rd.join(p, p.c.id == rd.c.payment_id))
        .where(rd.c.card == card, p.c.status.in_(SUCCEEDED))
    ).scalar_one()
    reports = conn.execute(
        sa.select(sa.func.count()).where(risk_reports.c.card == card)
    ).scalar_one()
    return {"successes": successes, "chargebacks": reports}


def device_known(conn: Connection, customer_id: str, device: str) -> tuple[bool, bool]:
    """(the customer has earlier decisions, one of them from this device)."""
    rd = risk_decisions
    seen = conn.execute(
        sa.select(sa.func.count(), sa.func.count().filter(rd.c.device == device)).where(
            rd.c.customer_id == customer_id
        )
    ).one()
    return seen[0] > 0, seen[1] > 0


# -- lists ------------------------------------------------------------------------------


def listed(conn: Connection, entries: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(kind, action) of every list entry among `entries` ((kind, value) pairs)."""
    wanted = [(k, v) for k, v in entries if v]
    if not wanted:
        return []
    rl = risk_lists
    rows = conn.execute(
        sa.select(rl.c.kind, rl.c.action).where(
            sa.or_(*[sa.and_(rl.c.kind == k, rl.c.value == v) for k, v in wanted])
        )
    )
    return [(r.kind, r.action) for r in rows]


def add_entry(conn: Connection, entry: dict[str, Any]) -> dict[str, Any]:
    """Insert or replace the entry for (kind, value)."""
    rl = risk_lists
    conn.execute(rl.delete().where(rl.c.kind == entry["kind"], rl.c.value == entry["value"]))
    new_id = conn.execute(rl.insert().returning(rl.c.id), entry).scalar_one()
    return {**entry, "id": new_id}


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
