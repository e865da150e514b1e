"""Typed identifiers. Each carries a readable prefix (pay_, att_, re_, evt_, mer_)."""

from __future__ import annotations

from typing import NewType

PaymentId = NewType("PaymentId", str)
AttemptId = NewType("AttemptId", str)
RefundId = NewType("RefundId", str)
EventId = NewType("EventId", str)
MerchantId = NewType("MerchantId", str)

PREFIXES = {
    "payment": "pay",
    "attempt": "att",
    "refund": "re",
    "event": "evt",
    "merchant": "mer",
}
