"""Event types written to the outbox in the same transaction as the change they describe."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    PAYMENT_CREATED = "payment.created"
    PAYMENT_PROCESSING = "payment.processing"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REQUIRES_ACTION = "payment.requires_action"
    PAYMENT_CANCELED = "payment.canceled"
    PAYMENT_HELD = "payment.held"  # waiting for manual review
    PAYMENT_REFUNDED = "payment.refunded"
    ATTEMPT_FINISHED = "attempt.finished"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    DUPLICATE_CHARGE = "payment.duplicate_charge"  # a late extra charge, refunded by paymend
    COMPENSATION_GRANTED = "compensation.granted"
    NOTIFICATION_FAILED = "notification.failed"  # every channel to the customer failed


# the events merchants receive by webhook
WEBHOOK_EVENTS = frozenset(
    {
        EventType.PAYMENT_SUCCEEDED,
        EventType.PAYMENT_FAILED,
        EventType.PAYMENT_REQUIRES_ACTION,
        EventType.PAYMENT_HELD,
        EventType.PAYMENT_CANCELED,
        EventType.PAYMENT_REFUNDED,
        EventType.REFUND_FAILED,
        EventType.DUPLICATE_CHARGE,
        EventType.COMPENSATION_GRANTED,
        EventType.NOTIFICATION_FAILED,
    }
)
