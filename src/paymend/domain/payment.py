"""Payment, Attempt and Refund with explicit state machines.

Every status change goes through `transition`, which refuses edges the machine does not
have, so no code path can put a payment into a state the business never defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from typing_extensions import TypedDict

from paymend.domain.errors import Conflict, IllegalTransition, InvalidInput
from paymend.domain.ids import AttemptId, MerchantId, PaymentId, RefundId
from paymend.domain.masking import mask_email, mask_phone
from paymend.domain.money import Money

S = TypeVar("S", bound=StrEnum)


class PaymentStatus(StrEnum):
    CREATED = "created"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"
    HELD = "held"  # waiting for an operator's review before any provider is called
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


# One order, one payment: a payment in these statuses holds its order, and another payment
# for the order is refused (unless both are split payments). Failed, canceled and fully
# refunded payments let go: the customer may pay again.
ORDER_IN_FLIGHT = frozenset(
    {
        PaymentStatus.CREATED,
        PaymentStatus.PROCESSING,
        PaymentStatus.REQUIRES_ACTION,
        PaymentStatus.HELD,
    }
)
ORDER_PAID = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})

PAYMENT_EDGES: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.CREATED: frozenset({PaymentStatus.PROCESSING, PaymentStatus.CANCELED}),
    PaymentStatus.PROCESSING: frozenset(
        {
            PaymentStatus.SUCCEEDED,
            PaymentStatus.FAILED,
            PaymentStatus.REQUIRES_ACTION,
            PaymentStatus.HELD,
            PaymentStatus.CANCELED,
        }
    ),
    # released by ops (-> processing), rejected (-> failed), or canceled by the shop
    PaymentStatus.HELD: frozenset(
        {PaymentStatus.PROCESSING, PaymentStatus.FAILED, PaymentStatus.CANCELED}
    ),
    # the customer completes (-> processing), abandons (-> canceled) or fails the challenge
    PaymentStatus.REQUIRES_ACTION: frozenset(
        {PaymentStatus.PROCESSING, PaymentStatus.CANCELED, PaymentStatus.FAILED}
    ),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset(
        {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
    ),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.CANCELED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}

_REFUND_STATUSES = frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})


class AttemptStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"
    UNKNOWN = "unknown"
    # the provider charged, but the payment had already settled another way (another
    # attempt succeeded, or it was canceled or failed): paymend refunds this charge
    REVERSED = "reversed"


ATTEMPT_EDGES: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    AttemptStatus.PENDING: frozenset(
        {
            AttemptStatus.SUCCEEDED,
            AttemptStatus.FAILED,
            AttemptStatus.UNKNOWN,
            AttemptStatus.REQUIRES_ACTION,
            AttemptStatus.REVERSED,
        }
    ),
    # resolved by a status query at the provider (which may say the bank now waits for
    # the customer's 3-D Secure)
    AttemptStatus.UNKNOWN: frozenset(
        {
            AttemptStatus.SUCCEEDED,
            AttemptStatus.FAILED,
            AttemptStatus.REVERSED,
            AttemptStatus.REQUIRES_ACTION,
        }
    ),
    # the customer finished (or failed) 3-D Secure for this very attempt; unknown when
    # the confirming call's answer was lost
    AttemptStatus.REQUIRES_ACTION: frozenset(
        {
            AttemptStatus.SUCCEEDED,
            AttemptStatus.FAILED,
            AttemptStatus.REVERSED,
            AttemptStatus.UNKNOWN,
        }
    ),
    AttemptStatus.SUCCEEDED: frozenset(),
    # reconciliation found the provider charged after all: refunded, never "succeeded"
    AttemptStatus.FAILED: frozenset({AttemptStatus.REVERSED}),
    AttemptStatus.REVERSED: frozenset(),
}


class RefundKind(StrEnum):
    MERCHANT = "merchant"  # asked for through the API
    DUPLICATE = "duplicate"  # an extra charge paymend sends back on its own


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


REFUND_EDGES: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}


def check_edge(entity: str, edges: dict[S, frozenset[S]], current: S, target: S) -> S:
    """Return `target` if `current -> target` is an edge of the machine, else raise."""
    if target not in edges[current]:
        raise IllegalTransition(entity, current.value, target.value)
    return target


class MaskedCustomer(TypedDict):
    """The customer as responses and webhooks show it: email and phone masked."""

    id: str | None
    locale: str | None
    phone: str | None  # +86****5678
    email: str | None  # l***@example.com


@dataclass(slots=True)
class Customer:
    """Who pays. `phone` and `email` are in clear only on their way in (from the API to
    the store, which seals them: store/pii.py); a payment read back carries their masked
    forms alone, which is all a response, a webhook, an attempt's snapshot or a log shows.
    """

    id: str | None = None
    locale: str | None = None
    phone: str | None = None
    email: str | None = None
    phone_masked: str | None = None
    email_masked: str | None = None

    def __post_init__(self) -> None:
        if self.phone and self.phone_masked is None:
            self.phone_masked = mask_phone(self.phone)
        if self.email and self.email_masked is None:
            self.email_masked = mask_email(self.email)

    def masked(self) -> MaskedCustomer:
        """The customer as anyone but the customer may see it."""
        return {
            "id": self.id,
            "locale": self.locale,
            "phone": self.phone_masked,
            "email": self.email_masked,
        }


@dataclass(slots=True)
class Payment:
    """One order's request to be paid, across however many attempts it takes."""

    id: PaymentId
    merchant_id: MerchantId
    order_id: str
    amount: Money
    method: str
    status: PaymentStatus = PaymentStatus.CREATED
    amount_refunded: int = 0
    amount_refund_pending: int = 0
    bank: str | None = None
    region: str | None = None
    customer: Customer = field(default_factory=Customer)
    metadata: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    trace_id: str | None = None
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    split: bool = False  # one of several payments the merchant takes for this order

    def transition(self, target: PaymentStatus) -> None:
        """Move along an edge of the machine. Refund statuses are reached only through
        `settle_refund`, so the status always agrees with the amounts."""
        if target in _REFUND_STATUSES:
            raise IllegalTransition("payment", self.status.value, target.value)
        self.status = check_edge("payment", PAYMENT_EDGES, self.status, target)

    @property
    def refundable(self) -> int:
        """Minor units that may still be refunded (captured - refunded - in flight)."""
        if self.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
            return 0
        return self.amount.minor - self.amount_refunded - self.amount_refund_pending

    def reserve_refund(self, minor: int | None = None) -> int:
        """Hold `minor` units (None: all not yet refunded) for a refund about to be sent
        to the provider; return the units held."""
        if self.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
            raise InvalidInput(
                "payment_not_refundable",
                f"a payment in status '{self.status.value}' cannot be refunded",
                param="payment",
                status=409,
            )
        if minor is None:
            minor = self.amount.minor - self.amount_refunded
        if isinstance(minor, bool) or not isinstance(minor, int) or minor <= 0:
            raise InvalidInput(
                "amount_too_small", "refund amount must be a positive integer", param="amount"
            )
        if minor > self.refundable:
            if minor <= self.amount.minor - self.amount_refunded:
                # it would fit but for refunds still in flight: a race lost, not bad input
                raise Conflict(
                    "refund_in_progress",
                    f"{self.amount_refund_pending} minor units of this payment are being "
                    f"refunded right now; {self.refundable} remain refundable. Look at the "
                    "payment's refunds before refunding more",
                    param="amount",
                )
            raise InvalidInput(
                "refund_exceeds_captured",
                f"refund of {minor} exceeds the {self.refundable} minor units still refundable",
                param="amount",
            )
        self.amount_refund_pending += minor
        return minor

    def settle_refund(self, minor: int, *, succeeded: bool) -> None:
        """Release a reservation; on success count it as refunded and move the status."""
        if minor <= 0 or minor > self.amount_refund_pending:
            raise InvalidInput("refund_not_reserved", "no such amount is waiting to be refunded")
        self.amount_refund_pending -= minor
        if not succeeded:
            return
        self.amount_refunded += minor
        target = (
            PaymentStatus.REFUNDED
            if self.amount_refunded == self.amount.minor
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        self.status = check_edge("payment", PAYMENT_EDGES, self.status, target)


@dataclass(slots=True)
class Attempt:
    """One call to one provider for one payment: the audit record of that call."""

    id: AttemptId
    payment_id: PaymentId
    seq: int
    provider: str
    status: AttemptStatus = AttemptStatus.PENDING
    provider_reference: str | None = None
    raw_code: str | None = None
    raw_message: str | None = None
    unified_code: str | None = None
    decision: str | None = None
    reason: str | None = None
    latency_ms: int | None = None
    trace_id: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    finished_at: datetime | None = None
    # what the customer must do for this attempt's charge, as the provider said: a
    # redirect to its page or a QR code to scan, {"type": …, "url": …}
    next_action: dict[str, str] | None = None

    @property
    def idempotency_key(self) -> str:
        """The key the provider sees: stable per attempt, so a resend never charges twice."""
        return f"paymend-{self.id}"

    def transition(self, target: AttemptStatus) -> None:
        self.status = check_edge("attempt", ATTEMPT_EDGES, self.status, target)


@dataclass(slots=True)
class Refund:
    id: RefundId
    payment_id: PaymentId
    amount: Money
    provider: str
    status: RefundStatus = RefundStatus.PENDING
    kind: RefundKind = RefundKind.MERCHANT
    attempt_id: AttemptId | None = None  # the charge it refunds
    reason: str | None = None
    provider_reference: str | None = None
    raw_code: str | None = None
    raw_message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def idempotency_key(self) -> str:
        return f"paymend-{self.id}"

    def transition(self, target: RefundStatus) -> None:
        self.status = check_edge("refund", REFUND_EDGES, self.status, target)
