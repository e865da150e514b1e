"""Risk control's repository: decisions, lists, fraud reports and the stored decisions a
backtest replays. Plain rows in and out (the store knows nothing of the risk room);
engine/risk_gate.py turns them into risk's types. What each payment's assessment reads
back of them is store/risk_assessment.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from paymend.domain.errors import NotFound
from paymend.store.prepared import Prepared
from paymend.store.tables import (
    payments,
    risk_decisions,
    risk_lists,
    risk_reports,
)

# every payment stores its decision: compiled once per dialect and run on the driver's
# cursor with the columns' own bind processors (store/prepared.py)
_RECORD = Prepared(risk_decisions.insert())


def record(conn: Connection, row: dict[str, Any]) -> None:
    """Store one payment's decision (the row's keys are risk_decisions' columns; a
    deferred write: store/prepared.py)."""
    _RECORD.write(conn, row)


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


# -- lists ------------------------------------------------------------------------------


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
