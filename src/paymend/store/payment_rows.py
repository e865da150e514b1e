"""The one mapping each way between a payment's and an attempt's row and their domain
objects (domain/payment.py). Every repository that reads or writes these rows goes
through it; the customer's sealed contact columns are store/pii.py's.
"""

from __future__ import annotations

from typing import Any

from paymend.domain.ids import AttemptId, MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import Attempt, AttemptStatus, Customer, Payment, PaymentStatus

# a row read by column name: SQLAlchemy's Row, or a named tuple of the table's columns
# (the reads run on the driver's cursor, store/payments.py)
Columns = Any


def payment_row(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "merchant_id": p.merchant_id,
        "order_id": p.order_id,
        "amount": p.amount.minor,
        "currency": p.amount.currency,
        "method": p.method,
        "bank": p.bank,
        "region": p.region,
        "metadata": p.metadata,
        "payment_token": p.token,
        "version": p.version,
        "updated_at": p.updated_at,
        "split": p.split,
        **payment_changes(p),
    }


def payment_changes(p: Payment) -> dict[str, Any]:
    """The columns an update of a payment can change (its status, refunded amounts and
    failure); the rest is fixed at insert, and writing it again would only re-encode
    its metadata. `version` and `updated_at` are the repository's."""
    return {
        "status": p.status.value,
        "amount_refunded": p.amount_refunded,
        "amount_refund_pending": p.amount_refund_pending,
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "trace_id": p.trace_id,
    }


def payment_from_row(row: Columns) -> Payment:
    return Payment(
        id=PaymentId(row.id),
        merchant_id=MerchantId(row.merchant_id),
        order_id=row.order_id,
        amount=Money(row.amount, row.currency),
        method=row.method,
        status=PaymentStatus(row.status),
        amount_refunded=row.amount_refunded,
        amount_refund_pending=row.amount_refund_pending,
        bank=row.bank,
        region=row.region,
        customer=Customer(
            id=row.customer.get("id"),
            locale=row.customer.get("locale"),
            phone_masked=row.customer.get("phone"),
            email_masked=row.customer.get("email"),
        ),
        metadata=dict(row.metadata),
        token=row.payment_token,
        failure_code=row.failure_code,
        failure_message=row.failure_message,
        trace_id=row.trace_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        split=bool(row.split),
    )


def attempt_row(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "payment_id": a.payment_id,
        "seq": a.seq,
        "provider": a.provider,
        "idempotency_key": a.idempotency_key,
        "request": a.request,
        "created_at": a.created_at,
        **attempt_changes(a),
    }


def attempt_changes(a: Attempt) -> dict[str, Any]:
    """The columns an update of an attempt can change: its outcome. Its payment,
    sequence, channel, request and creation are fixed when it is written before the
    call."""
    return {
        "status": a.status.value,
        "provider_reference": a.provider_reference,
        "raw_code": a.raw_code,
        "raw_message": _clip(a.raw_message),
        "unified_code": a.unified_code,
        "decision": a.decision,
        "reason": _clip(a.reason),
        "latency_ms": a.latency_ms,
        "trace_id": a.trace_id,
        "finished_at": a.finished_at,
        "next_action": a.next_action,
    }


def attempt_from_row(row: Columns) -> Attempt:
    return Attempt(
        id=AttemptId(row.id),
        payment_id=PaymentId(row.payment_id),
        seq=row.seq,
        provider=row.provider,
        status=AttemptStatus(row.status),
        provider_reference=row.provider_reference,
        raw_code=row.raw_code,
        raw_message=row.raw_message,
        unified_code=row.unified_code,
        decision=row.decision,
        reason=row.reason,
        latency_ms=row.latency_ms,
        trace_id=row.trace_id,
        request=dict(row.request),
        created_at=row.created_at,
        finished_at=row.finished_at,
        next_action=dict(row.next_action) if row.next_action else None,
    )


def _clip(text: str | None, limit: int = 500) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"
