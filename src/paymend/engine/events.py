"""Outbox events: what each one carries, written in the caller's transaction. A payload
is what a merchant's webhook receives: the customer's contact details appear masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from typing_extensions import TypedDict

from paymend.domain.events import EventType
from paymend.domain.payment import Attempt, Payment, PaymentStatus, Refund
from paymend.store import outbox
from paymend.store.database import Connection
from paymend.store.outbox import Event

STATUS_EVENTS = {
    PaymentStatus.SUCCEEDED: EventType.PAYMENT_SUCCEEDED,
    PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
    PaymentStatus.REQUIRES_ACTION: EventType.PAYMENT_REQUIRES_ACTION,
    PaymentStatus.CANCELED: EventType.PAYMENT_CANCELED,
    PaymentStatus.HELD: EventType.PAYMENT_HELD,
    PaymentStatus.PROCESSING: EventType.PAYMENT_PROCESSING,
    PaymentStatus.REFUNDED: EventType.PAYMENT_REFUNDED,
    PaymentStatus.PARTIALLY_REFUNDED: EventType.PAYMENT_REFUNDED,
}

# failures after which the order cannot be paid any more: close it, release the stock
_ORDER_OVER = frozenset({"order_closed", "duplicate_transaction", "already_paid"})
HOLD_STOCK_S = 900  # how long to keep stock for a customer who may pay another way


def order_advice(payment: Payment) -> dict[str, Any]:
    """What the shop's order system should do about a failed payment."""
    if payment.failure_code in _ORDER_OVER:
        return {
            "keep_order_open": False,
            "release_stock_after_s": 0,
            "why": "this order cannot be paid any more",
        }
    return {
        "keep_order_open": True,
        "release_stock_after_s": HOLD_STOCK_S,
        "why": "the customer can still pay with another card or method",
    }


def emit(
    conn: Connection,
    event_id: str,
    payment: Payment,
    type: EventType,
    now: datetime,
    *,
    attempt: Attempt | None = None,
    refund: Refund | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    row = event_row(event_id, payment, type, now, attempt=attempt, refund=refund, extra=extra)
    outbox.add_rows(conn, [row])


def event_row(
    event_id: str,
    payment: Payment,
    type: EventType,
    now: datetime,
    *,
    attempt: Attempt | None = None,
    refund: Refund | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event `emit` writes, as the payment and attempt are now, for
    `outbox.add_rows` to write with the other events of the same change."""
    payload: dict[str, Any] = {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "status": payment.status.value,
        "amount": payment.amount.minor,
        "currency": payment.amount.currency,
        "amount_refunded": payment.amount_refunded,
        # who paid, as anyone but the customer may see it: email and phone masked
        "customer": payment.customer.masked(),
    }
    if payment.failure_code is not None and type is EventType.PAYMENT_FAILED:
        payload["failure_code"] = payment.failure_code
        payload["order_advice"] = order_advice(payment)
    if attempt is not None:
        payload["attempt"] = {
            "id": attempt.id,
            "provider": attempt.provider,
            "status": attempt.status.value,
            "raw_code": attempt.raw_code,
            "unified_code": attempt.unified_code,
            "decision": attempt.decision,
        }
    if refund is not None:
        payload["refund"] = {
            "id": refund.id,
            "amount": refund.amount.minor,
            "status": refund.status.value,
            "kind": refund.kind.value,
        }
    if extra:
        payload.update(extra)
    return outbox.row(event_id, payment.merchant_id, type, payment.id, payload, now)


class EventEnvelope(TypedDict):
    """An event as webhooks deliver it and the events API lists it: `created` in Unix
    seconds, `data` the event's payload (for `payment.*` events the payment's ids, status,
    amount and masked customer)."""

    id: str  # evt_…, stable across redeliveries: drop duplicates by it
    object: Literal["event"]
    type: str  # payment.succeeded, refund.failed, …
    created: int
    data: dict[str, Any]


def envelope(event: Event) -> EventEnvelope:
    """An event as webhooks deliver it and the events API lists it."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "data": event.payload,
    }
