"""Compensation for a failed or delayed payment: a coupon or a credit granted by support
staff, within the merchant's cap, stored with who granted it and why, audit-logged, and
announced as an event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from paymend.domain.compensation import Compensation, CompensationKind
from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.events import EventType
from paymend.domain.merchant import Merchant
from paymend.domain.money import payment_amount
from paymend.domain.payment import Attempt, AttemptStatus, Payment, PaymentStatus
from paymend.engine.audit import Audited, audited
from paymend.engine.events import emit
from paymend.engine.payments import PaymentService
from paymend.store import compensations as repo
from paymend.store import idempotency, payments
from paymend.store.database import Connection
from paymend.store.idempotency import Claim

__all__ = [  # what a grant takes and gives, named here for its callers
    "Compensation",
    "CompensationKind",
    "cap_minor",
    "for_payment",
    "get",
    "grant",
    "why_not_applicable",
]

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
        repo.lock_payment(conn, payment_id)  # concurrent grants see each other's totals
        payment = payments.get_payment(conn, payment_id, merchant.id)
        money = payment_amount(amount, payment.amount.currency)
        if not reason.strip() or not granted_by.strip():
            raise InvalidInput("parameter_missing", "reason and granted_by are required")
        why_not = why_not_applicable(payment, payments.list_attempts(conn, payment.id))
        if why_not is not None:
            raise Conflict(
                "compensation_not_applicable",
                f"compensations make up for a failed or delayed payment; {why_not}",
            )
        granted = repo.granted_minor(conn, payment.id)
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
        repo.insert(conn, comp)
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


async def for_payment(service: PaymentService, payment_id: str) -> list[Compensation]:
    return await service.store.run(lambda conn: repo.for_payment(conn, payment_id))


async def get(service: PaymentService, compensation_id: str, merchant_id: str) -> Compensation:
    """One of the merchant's compensations."""

    def read(conn: Connection) -> Compensation:
        found = repo.get(conn, compensation_id)
        if found is None:
            raise NotFound("compensation_not_found", f"no compensation '{compensation_id}'")
        payments.get_payment(conn, found.payment_id, merchant_id)  # NotFound if not theirs
        return found

    return await service.store.run(read)
