"""Compensation for a failed or delayed payment: a coupon or a credit granted by support
staff, within the merchant's cap, stored with who granted it and why, audit-logged, and
announced as an event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.events import EventType
from paymend.domain.money import payment_amount
from paymend.domain.payment import Attempt, AttemptStatus, Payment, PaymentStatus
from paymend.engine.audit import Audited, audited
from paymend.engine.events import emit
from paymend.engine.payments import PaymentService
from paymend.store import idempotency
from paymend.store import payments as repo
from paymend.store.idempotency import Claim
from paymend.store.merchants import Merchant
from paymend.store.tables import compensations, payments


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


# a payment that took longer than this to succeed was delayed: support may make up for it
DELAYED_AFTER = timedelta(seconds=60)
DEFAULT_CAP_PERCENT = 100  # all compensations of a payment together, of its amount
_TROUBLE = frozenset({AttemptStatus.FAILED, AttemptStatus.UNKNOWN, AttemptStatus.REVERSED})


def cap_minor(payment: Payment, settings: Mapping[str, Any]) -> int:
    """What all compensations of `payment` may add up to under the merchant's policy
    (`compensation_cap_percent` of the payment's amount; 100 unless the merchant set it)."""
    percent = int(settings.get("compensation_cap_percent", DEFAULT_CAP_PERCENT))
    return payment.amount.minor * percent // 100


def why_not_applicable(payment: Payment, attempts: list[Attempt]) -> str | None:
    """Why a compensation makes no sense for this payment, or None when it does.

    Compensations make up for a failed or delayed payment: one that failed, is still
    being settled or held, waits on the customer, or succeeded only after a failed or
    unknown call or a long delay. A payment the shop canceled, or one that went through at
    once, has nothing to make up for."""
    if payment.status is PaymentStatus.CANCELED:
        return "the shop canceled this payment"
    if payment.status not in (
        PaymentStatus.SUCCEEDED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    ):
        return None  # failed, processing, held, requires_action: delayed or failed
    if any(a.status in _TROUBLE for a in attempts):
        return None
    charged = next((a for a in attempts if a.status is AttemptStatus.SUCCEEDED), None)
    took = (
        charged.finished_at - payment.created_at
        if charged is not None and charged.finished_at and payment.created_at
        else None
    )
    if took is not None and took > DELAYED_AFTER:
        return None
    return "this payment succeeded at its first try without delay"


async def grant(
    service: PaymentService,
    merchant: Merchant,
    payment_id: str,
    kind: CompensationKind,
    amount: int,
    reason: str,
    granted_by: str,
    claim: Claim | None = None,
) -> Compensation:
    """Grant a coupon or credit within the merchant's cap, on a payment where it makes
    sense; stored with its audit entry and its event in one transaction. `claim`: the
    Idempotency-Key it runs under, linked to the compensation."""
    now = service.clock.now()
    actor = f"merchant:{merchant.id}/{granted_by.strip()}"

    def write(conn: Connection) -> Audited[Compensation]:
        _lock_payment(conn, payment_id)  # concurrent grants see each other's totals
        payment = repo.get_payment(conn, payment_id, merchant.id)
        money = payment_amount(amount, payment.amount.currency)
        if not reason.strip() or not granted_by.strip():
            raise InvalidInput("parameter_missing", "reason and granted_by are required")
        why_not = why_not_applicable(payment, repo.list_attempts(conn, payment.id))
        if why_not is not None:
            raise Conflict(
                "compensation_not_applicable",
                f"compensations make up for a failed or delayed payment; {why_not}",
            )
        granted = _granted_minor(conn, payment.id)
        cap = cap_minor(payment, merchant.settings)
        if granted + money.minor > cap:
            raise InvalidInput(
                "compensation_exceeds_cap",
                f"compensations for this payment may total at most {cap} minor units under "
                f"the shop's policy; {granted} are granted, {max(0, cap - granted)} remain",
                param="amount",
            )
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
        details = {
            "id": comp.id,
            "kind": comp.kind.value,
            "amount": comp.amount,
            "currency": comp.currency,
            "reason": comp.reason,
            "granted_by": comp.granted_by,
        }
        emit(
            conn,
            service.ids.new("evt"),
            payment,
            EventType.COMPENSATION_GRANTED,
            now,
            extra={"compensation": details},
        )
        return Audited(comp, "compensation.grant", f"payment:{payment.id}", details)

    return await audited(service.store, now, actor, reason.strip(), write)


def _lock_payment(conn: Connection, payment_id: str) -> None:
    """Serialize grants on one payment (PostgreSQL row lock; SQLite has one writer)."""
    conn.execute(sa.select(payments.c.id).where(payments.c.id == payment_id).with_for_update())


def _granted_minor(conn: Connection, payment_id: str) -> int:
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(compensations.c.amount), 0)).where(
            compensations.c.payment_id == payment_id
        )
    ).scalar_one()
    return int(total)


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
