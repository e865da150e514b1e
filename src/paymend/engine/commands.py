"""What the API (or the lab) asks the engine to do, already validated."""

from __future__ import annotations

from dataclasses import dataclass, field

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer
from paymend.store.idempotency import Claim


@dataclass(frozen=True, slots=True)
class PayCommand:
    merchant_id: MerchantId
    order_id: str
    amount: Money
    method: str
    bank: str | None = None
    region: str | None = None
    token: str | None = None
    customer: Customer = field(default_factory=Customer)
    metadata: dict[str, str] = field(default_factory=dict)
    trace_id: str | None = None
    deadline_s: float | None = None  # the merchant's checkout deadline; None: the default
    split: bool = False  # one of several payments for the order (does not hold it alone)
    claim: Claim | None = None  # the Idempotency-Key this runs under: linked to the payment


@dataclass(frozen=True, slots=True)
class RefundCommand:
    merchant_id: MerchantId
    payment_id: str
    amount: int | None = None  # None: everything still refundable
    reason: str | None = None
    trace_id: str | None = None
    claim: Claim | None = None  # the Idempotency-Key this runs under: linked to the refund
