"""What the API (or the lab) asks the engine to do, already validated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer
from paymend.store.idempotency import Claim, NewKey

if TYPE_CHECKING:
    from paymend.engine.payments import PaymentView

# The answer to store for the Idempotency-Key, from the payment as the checkout run left
# it: called inside the run's last transaction, so the key is answered with the outcome.
Answer = Callable[["PaymentView"], tuple[int, dict[str, Any]]]


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
    # the Idempotency-Key this runs under, linked to the payment: claimed already, or a
    # NewKey claimed in the payment's first transaction
    claim: Claim | NewKey | None = None
    answer: Answer | None = None  # store the key's answer with the run's last record


@dataclass(frozen=True, slots=True)
class RefundCommand:
    merchant_id: MerchantId
    payment_id: str
    amount: int | None = None  # None: everything still refundable
    reason: str | None = None
    trace_id: str | None = None
    claim: Claim | None = None  # the Idempotency-Key this runs under: linked to the refund
