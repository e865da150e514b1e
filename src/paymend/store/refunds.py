"""Refunds of a payment."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import NotFound
from paymend.domain.ids import AttemptId, PaymentId, RefundId
from paymend.domain.money import Money
from paymend.domain.payment import Refund, RefundKind, RefundStatus
from paymend.store.tables import refunds

_INSERT = refunds.insert()
_UPDATE = refunds.update().where(refunds.c.id == sa.bindparam("b_id"))


def insert(conn: Connection, r: Refund) -> None:
    conn.execute(_INSERT, _values(r))


def update(conn: Connection, r: Refund) -> None:
    values = _values(r)
    values["b_id"] = values.pop("id")
    conn.execute(_UPDATE, values)


def get(conn: Connection, refund_id: str) -> Refund:
    row = conn.execute(sa.select(refunds).where(refunds.c.id == refund_id)).first()
    if row is None:
        raise NotFound("refund_not_found", f"no refund '{refund_id}'", param="id")
    return _refund(row)


def for_payment(conn: Connection, payment_id: str) -> list[Refund]:
    rows = conn.execute(
        sa.select(refunds)
        .where(refunds.c.payment_id == payment_id)
        .order_by(refunds.c.created_at, refunds.c.id)
    )
    return [_refund(r) for r in rows]


def _values(r: Refund) -> dict[str, Any]:
    return {
        "id": r.id,
        "payment_id": r.payment_id,
        "amount": r.amount.minor,
        "currency": r.amount.currency,
        "status": r.status.value,
        "reason": r.reason,
        "provider": r.provider,
        "idempotency_key": r.idempotency_key,
        "provider_reference": r.provider_reference,
        "raw_code": r.raw_code,
        "raw_message": r.raw_message,
        "kind": r.kind.value,
        "attempt_id": r.attempt_id,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _refund(row: sa.Row[Any]) -> Refund:
    return Refund(
        id=RefundId(row.id),
        payment_id=PaymentId(row.payment_id),
        amount=Money(row.amount, row.currency),
        provider=row.provider,
        status=RefundStatus(row.status),
        reason=row.reason,
        provider_reference=row.provider_reference,
        raw_code=row.raw_code,
        raw_message=row.raw_message,
        kind=RefundKind(row.kind),
        attempt_id=AttemptId(row.attempt_id) if row.attempt_id else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


from_row = _refund  # for repositories that read refunds in bulk
