"""Compensations granted on payments, and the total granted per payment (the cap)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.compensation import Compensation, CompensationKind
from paymend.store.tables import compensations, payments


def insert(conn: Connection, c: Compensation) -> None:
    conn.execute(
        compensations.insert(),
        {
            "id": c.id,
            "payment_id": c.payment_id,
            "kind": c.kind.value,
            "amount": c.amount,
            "currency": c.currency,
            "reason": c.reason,
            "granted_by": c.granted_by,
            "created_at": c.created_at,
        },
    )


def lock_payment(conn: Connection, payment_id: str) -> None:
    """Serialize grants on one payment (PostgreSQL row lock; SQLite has one writer)."""
    conn.execute(sa.select(payments.c.id).where(payments.c.id == payment_id).with_for_update())


def granted_minor(conn: Connection, payment_id: str) -> int:
    """What the payment's compensations add up to, in minor units."""
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(compensations.c.amount), 0)).where(
            compensations.c.payment_id == payment_id
        )
    ).scalar_one()
    return int(total)


def for_payment(conn: Connection, payment_id: str) -> list[Compensation]:
    rows = conn.execute(
        sa.select(compensations)
        .where(compensations.c.payment_id == payment_id)
        .order_by(compensations.c.created_at)
    )
    return [_compensation(r) for r in rows]


def get(conn: Connection, compensation_id: str) -> Compensation | None:
    row = conn.execute(
        sa.select(compensations).where(compensations.c.id == compensation_id)
    ).first()
    return None if row is None else _compensation(row)


def _compensation(r: sa.Row[Any]) -> Compensation:
    return Compensation(
        r.id,
        r.payment_id,
        CompensationKind(r.kind),
        r.amount,
        r.currency,
        r.reason,
        r.granted_by,
        r.created_at,
    )
