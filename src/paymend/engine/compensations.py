"""Compensation for a failed or delayed payment: a coupon or a credit granted by support
staff, stored with who granted it and why, and announced as an event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import InvalidInput, NotFound
from paymend.domain.events import EventType
from paymend.domain.money import payment_amount
from paymend.engine.events import emit
from paymend.engine.payments import PaymentService
from paymend.observability import get_logger
from paymend.store import idempotency
from paymend.store import payments as repo
from paymend.store.idempotency import Claim
from paymend.store.tables import compensations

log = get_logger("paymend.audit")


class CompensationKind(StrEnum):
    COUPON = "coupon"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class Compensation:
    id: str
    payment_id: str
    kind: CompensationKind
    amount: int
    currency: str
    reason: str
    granted_by: str
    created_at: datetime


async def grant(
    service: PaymentService,
    merchant_id: str,
    payment_id: str,
    kind: CompensationKind,
    amount: int,
    reason: str,
    granted_by: str,
    claim: Claim | None = None,
) -> Compensation:
    """`claim`: the Idempotency-Key it runs under, linked to the compensation."""
    now = service.clock.now()

    def write(conn: Connection) -> Compensation:
        payment = repo.get_payment(conn, payment_id, merchant_id)
        money = payment_amount(amount, payment.amount.currency)
        if not reason.strip() or not granted_by.strip():
            raise InvalidInput("parameter_missing", "reason and granted_by are required")
        comp = Compensation(
            service.ids.new("cmp"),
            payment.id,
            kind,
            money.minor,
            money.currency,
            reason.strip(),
            granted_by.strip(),
            now,
        )
        conn.execute(
            compensations.insert(),
            {
                "id": comp.id,
                "payment_id": comp.payment_id,
                "kind": comp.kind.value,
                "amount": comp.amount,
                "currency": comp.currency,
                "reason": comp.reason,
                "granted_by": comp.granted_by,
                "created_at": now,
            },
        )
        idempotency.link(conn, claim, "compensation", comp.id)
        emit(
            conn,
            service.ids.new("evt"),
            payment,
            EventType.COMPENSATION_GRANTED,
            now,
            extra={
                "compensation": {
                    "id": comp.id,
                    "kind": comp.kind.value,
                    "amount": comp.amount,
                    "currency": comp.currency,
                    "reason": comp.reason,
                    "granted_by": comp.granted_by,
                }
            },
        )
        return comp

    comp = await service.store.run(write)
    log.info(
        "audit",
        action="compensation.granted",
        who=granted_by,
        payment_id=payment_id,
        compensation_id=comp.id,
        amount=comp.amount,
        currency=comp.currency,
        why=reason,
    )
    return comp


async def for_payment(service: PaymentService, payment_id: str) -> list[Compensation]:
    def read(conn: Connection) -> list[Compensation]:
        rows = conn.execute(
            sa.select(compensations)
            .where(compensations.c.payment_id == payment_id)
            .order_by(compensations.c.created_at)
        )
        return [_compensation(r) for r in rows]

    return await service.store.run(read)


async def get(service: PaymentService, compensation_id: str, merchant_id: str) -> Compensation:
    """One of the merchant's compensations."""

    def read(conn: Connection) -> Compensation:
        row = conn.execute(
            sa.select(compensations).where(compensations.c.id == compensation_id)
        ).first()
        if row is None:
            raise NotFound("compensation_not_found", f"no compensation '{compensation_id}'")
        repo.get_payment(conn, row.payment_id, merchant_id)  # NotFound if not theirs
        return _compensation(row)

    return await service.store.run(read)


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
