"""The one project error type: a stable machine code, an HTTP status and a human message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paymend.domain.control import Control


class PaymendError(Exception):
    """An error with a stable `code` that callers (and API clients) can branch on.

    `status` is the HTTP status the API answers with; `param` names the offending input
    field when there is one; `extra` holds further fields of the error object a client
    acts on (e.g. the `payment_id` an order conflict is about).
    """

    status: int = 400
    type: str = "invalid_request_error"
    changed_nothing: bool = True  # False when something was written before the error

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.extra: dict[str, str] = dict(extra or {})
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type


class InvalidInput(PaymendError):
    """Input that can never be valid; nothing was changed."""


class IllegalTransition(PaymendError):
    """A state machine was asked to move along an edge it does not have."""

    status = 409
    type = "state_error"

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(
            "illegal_state_transition",
            f"{entity} cannot go from '{current}' to '{target}'",
        )
        self.current = current
        self.target = target


class Unauthenticated(PaymendError):
    """No key, or a key that does not work: who is asking is not known."""

    status = 401
    type = "authentication_error"


class Forbidden(PaymendError):
    """The key works, but its holder's role may not do this."""

    status = 403
    type = "permission_error"


class NotFound(PaymendError):
    status = 404
    type = "invalid_request_error"


class Conflict(PaymendError):
    status = 409
    type = "invalid_request_error"


class OrderAlreadyPaid(Conflict):
    """The order already has a succeeded (or partially refunded) payment: paying it again
    would charge the customer twice. Nothing was written."""

    def __init__(self, order_id: str, payment_id: str) -> None:
        super().__init__(
            "order_already_paid",
            f"order '{order_id}' is already paid by payment {payment_id}; to take several "
            "payments for one order, send split_payment: true",
            param="order_id",
            extra={"payment_id": payment_id},
        )


class OrderPaymentInProgress(Conflict):
    """The order has a payment still in flight (processing, awaiting 3-D Secure or held
    for review): wait for its outcome, or cancel it first. Nothing was written."""

    def __init__(self, order_id: str, payment_id: str) -> None:
        super().__init__(
            "order_payment_in_progress",
            f"order '{order_id}' has payment {payment_id} in progress; wait for its outcome "
            f"(GET /v1/payments/{payment_id}) or cancel it before paying again",
            param="order_id",
            extra={"payment_id": payment_id},
        )


class StaleWrite(Conflict):
    """Someone else changed the payment since it was read; re-read and decide again."""

    def __init__(self, payment_id: str) -> None:
        super().__init__("concurrent_update", f"payment {payment_id} was changed concurrently")


class ControlExists(Conflict):
    """An identical control is already active: `existing` (None if it ended meanwhile)."""

    def __init__(self, existing: Control | None) -> None:
        what = f": {existing.id}, set by {existing.set_by}" if existing else "; try again"
        super().__init__("control_exists", f"an identical control is already active{what}")
        self.existing = existing


class Unavailable(PaymendError):
    """A dependency (the database, every provider) cannot be reached right now."""

    status = 503
    type = "api_error"


class PaymentInFlight(Unavailable):
    """The payment was created but its outcome could not be recorded (e.g. the database
    went away after the provider answered). The worker finishes it; retrying with the
    same Idempotency-Key replays this answer rather than paying again."""

    changed_nothing = False

    def __init__(self, payment_id: str) -> None:
        super().__init__(
            "payment_in_flight",
            f"payment {payment_id} was created but its outcome is not recorded yet; it will "
            f"be finished automatically: look it up with GET /v1/payments/{payment_id}",
            extra={"payment_id": payment_id},
        )
        self.payment_id = payment_id
