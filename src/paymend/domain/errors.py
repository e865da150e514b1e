"""The one project error type: a stable machine code, an HTTP status and a human message."""

from __future__ import annotations


class PaymendError(Exception):
    """An error with a stable `code` that callers (and API clients) can branch on.

    `status` is the HTTP status the API answers with; `param` names the offending input
    field when there is one.
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
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
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


class NotFound(PaymendError):
    status = 404
    type = "invalid_request_error"


class Conflict(PaymendError):
    status = 409
    type = "invalid_request_error"


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
        )
        self.payment_id = payment_id
