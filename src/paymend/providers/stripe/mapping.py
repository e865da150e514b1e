"""What Stripe answered, as paymend's ProviderResult.

Two kinds of answer reach this module: an object (a PaymentIntent or a Refund, as a
plain dict) and an error the SDK raised (`stripe.StripeError` and its subclasses, built
from the error object of https://docs.stripe.com/api/errors). The raw code kept is the
most specific one Stripe gave, `decline_code` before `code`, so that
failures/providers/stripe.yaml classifies it; the message is Stripe's own.

Where the answer leaves it open whether money moved (a 5xx, an idempotency key still in
use, a body that cannot be read), the outcome is PENDING, never DECLINED or ERROR: the
engine then asks before it retries or fails over. Below the HTTP answer the SDK wraps
the httpx exception in an `APIConnectionError`; the httpx cause says whether the request
can have left this machine (`ProviderConnectionError.sent`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import stripe

from paymend.providers.base import ProviderConnectionError, ProviderOutcome, ProviderResult

ATTEMPT_KEY = "paymend_attempt"  # metadata: the attempt's idempotency key
PAYMENT_KEY = "paymend_payment"  # metadata: the payment it belongs to
REFUND_KEY = "paymend_refund"  # metadata of a Refund: the refund's idempotency key

UNPARSEABLE = "unparseable_response"  # deliberately unmapped: counted, listed, queried
# codes under which Stripe may still be executing the request (the key is held by
# another in-flight request): https://docs.stripe.com/error-codes
IN_FLIGHT_CODES = frozenset({"idempotency_key_in_use", "lock_timeout"})
# https://docs.stripe.com/api/errors: "401 Unauthorized: No valid API key provided";
# "403 Forbidden: The API key doesn't have permissions to perform the request."
HTTP_CODES = {401: "401", 403: "403"}

_STATUS = {
    "succeeded": ProviderOutcome.SUCCEEDED,
    "requires_action": ProviderOutcome.REQUIRES_ACTION,
    # confirmed and being worked on: the money may still move
    "processing": ProviderOutcome.PENDING,
    # authorized, capture to follow (paymend asks for automatic capture)
    "requires_capture": ProviderOutcome.PENDING,
}


def intent_result(intent: Mapping[str, Any]) -> ProviderResult:
    """A PaymentIntent's status as a result (its lifecycle:
    https://docs.stripe.com/payments/paymentintents/lifecycle)."""
    status = intent.get("status")
    reference = intent.get("id") if isinstance(intent.get("id"), str) else None
    raw = _intent_raw(intent)
    if not isinstance(status, str) or reference is None:
        return ProviderResult(ProviderOutcome.PENDING, UNPARSEABLE, "no PaymentIntent", None, raw)
    if status in _STATUS:
        return ProviderResult(_STATUS[status], status, status, reference, raw)
    if status == "canceled":
        return ProviderResult(ProviderOutcome.DECLINED, "canceled", _reason(intent), reference, raw)
    if status in ("requires_payment_method", "requires_confirmation"):
        error = intent.get("last_payment_error")
        if isinstance(error, Mapping):
            code = error.get("decline_code") or error.get("code") or "card_declined"
            return ProviderResult(
                ProviderOutcome.DECLINED, str(code), _text(error.get("message")), reference, raw
            )
        # never confirmed (or its authentication was abandoned): nothing charged
        return ProviderResult(ProviderOutcome.DECLINED, status, status, reference, raw)
    return ProviderResult(
        ProviderOutcome.PENDING, UNPARSEABLE, f"unknown status {status!r}", reference, raw
    )


def refund_result(refund: Mapping[str, Any]) -> ProviderResult:
    """A Refund's status (https://docs.stripe.com/api/refunds/object#refund_object-status):
    `succeeded` is final, `failed`/`canceled` are a no, the rest is still on its way."""
    status = refund.get("status")
    reference = refund.get("id") if isinstance(refund.get("id"), str) else None
    raw = {k: refund.get(k) for k in ("amount", "currency", "status", "payment_intent")}
    if status == "succeeded":
        return ProviderResult(ProviderOutcome.SUCCEEDED, "succeeded", "refunded", reference, raw)
    if status in ("failed", "canceled"):
        code = refund.get("failure_reason") or status
        return ProviderResult(ProviderOutcome.DECLINED, str(code), str(status), reference, raw)
    if status in ("pending", "requires_action"):
        return ProviderResult(ProviderOutcome.PENDING, str(status), str(status), reference, raw)
    return ProviderResult(ProviderOutcome.PENDING, UNPARSEABLE, "no Refund", reference, raw)


def error_result(exc: stripe.StripeError, *, redact: str = "") -> ProviderResult:
    """A Stripe error answer as a result; raises ProviderConnectionError when there was
    no answer at all. `redact` (the API key) is cut out of any message kept."""
    if isinstance(exc, stripe.APIConnectionError):
        raise connection_error(exc)
    body = _error_body(exc)
    message = _redact(_text(body.get("message")) or _text(exc.user_message), redact)
    code = body.get("code") if isinstance(body.get("code"), str) else None
    decline = body.get("decline_code") if isinstance(body.get("decline_code"), str) else None
    intent = body.get("payment_intent")
    reference = intent.get("id") if isinstance(intent, Mapping) else None
    raw: dict[str, Any] = {
        "http_status": exc.http_status,
        "error": {k: body.get(k) for k in ("type", "code", "decline_code", "advice_code", "param")},
    }
    if isinstance(exc, stripe.CardError):
        return ProviderResult(
            ProviderOutcome.DECLINED, decline or code or "card_declined", message, reference, raw
        )
    if code in IN_FLIGHT_CODES or isinstance(exc, stripe.IdempotencyError):
        # another request under this key is (or was) being executed: it may charge
        return ProviderResult(
            ProviderOutcome.PENDING, code or "idempotency_error", message, reference, raw
        )
    status = exc.http_status
    if isinstance(exc, stripe.APIError) and (status is None or status < 300 or not body):
        # a 2xx Stripe could not have sent, or a body that is not Stripe's error object
        return ProviderResult(ProviderOutcome.PENDING, UNPARSEABLE, message, reference, raw)
    if status is not None and status >= 500:
        # a 5xx is indeterminate: the request may have run (https://docs.stripe.com/error-low-level)
        return ProviderResult(ProviderOutcome.PENDING, code or "api_error", message, reference, raw)
    if isinstance(exc, stripe.RateLimitError):
        # rate limiters run before the idempotency layer and the API: nothing ran
        # (https://docs.stripe.com/error-low-level, "Content errors")
        return ProviderResult(ProviderOutcome.ERROR, code or "rate_limit", message, None, raw)
    if status in HTTP_CODES and not code:
        return ProviderResult(ProviderOutcome.ERROR, HTTP_CODES[status], message, None, raw)
    return ProviderResult(
        ProviderOutcome.ERROR, code or _text(body.get("type")) or "api_error", message, None, raw
    )


def connection_error(exc: stripe.APIConnectionError) -> ProviderConnectionError:
    """What the httpx exception under the SDK's wrapper says about the request: a
    connect failure (refused, timed out, no pooled connection) never sent it; a read
    timeout or a reset after sending may have reached Stripe. Codes as in
    failures/providers/transport.yaml."""
    cause = exc.__cause__
    message = f"{type(cause).__name__ if cause else 'APIConnectionError'}: Stripe not reached"
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderConnectionError("CONNECTION_REFUSED", message, sent=False)
    if isinstance(cause, httpx.ReadTimeout):
        return ProviderConnectionError("READ_TIMEOUT", "no answer from Stripe in time", sent=True)
    if isinstance(cause, httpx.TimeoutException):
        return ProviderConnectionError("TIMEOUT", "Stripe timed out", sent=True)
    return ProviderConnectionError("CONNECTION_RESET", message, sent=True)


def _error_body(exc: stripe.StripeError) -> Mapping[str, Any]:
    body = exc.json_body
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return error
    return {}


def _intent_raw(intent: Mapping[str, Any]) -> dict[str, Any]:
    """What of the PaymentIntent is kept on the attempt: no card data is in these.

    While the PaymentIntent waits for the customer, `next_action` is paymend's own kind
    (next_action below) and Stripe's is kept as `stripe_next_action`."""
    raw = {
        k: intent.get(k)
        for k in ("status", "amount", "currency", "cancellation_reason")
        if intent.get(k) is not None
    }
    if isinstance(intent.get("next_action"), Mapping):
        raw["stripe_next_action"] = dict(intent["next_action"])
    if intent.get("status") == "requires_action":
        action = next_action(intent)
        if action is not None:
            raw["next_action"] = action
    metadata = intent.get("metadata")
    if isinstance(metadata, Mapping) and ATTEMPT_KEY in metadata:
        raw["attempt"] = metadata[ATTEMPT_KEY]
    return raw


def next_action(intent: Mapping[str, Any]) -> dict[str, str] | None:
    """What the checkout does for a PaymentIntent in `requires_action`
    (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-next_action):
    `redirect_to_url` is a `redirect` to its `url`; any other (`use_stripe_sdk`: 3-D
    Secure in the page) is `sdk` `stripe_js`, whose parameters are the PaymentIntent's
    id and `client_secret`, what `stripe.handleNextAction({clientSecret})` takes
    (https://docs.stripe.com/js/payment_intents/handle_next_action). The client secret
    is for the customer's browser only: Stripe asks that it be neither logged nor shown
    to anyone else (https://docs.stripe.com/api/payment_intents/object#payment_intent_object-client_secret)."""
    found = intent.get("next_action")
    if not isinstance(found, Mapping):
        return None
    redirect = found.get("redirect_to_url")
    if found.get("type") == "redirect_to_url" and isinstance(redirect, Mapping):
        url = redirect.get("url")
        if isinstance(url, str) and url:
            return {"type": "redirect", "url": url}
    secret = intent.get("client_secret")
    if not isinstance(secret, str) or not secret:
        return None
    parameters = {"client_secret": secret, "payment_intent": str(intent.get("id", ""))}
    return {"type": "sdk", "sdk": "stripe_js", "parameters": json.dumps(parameters)}


def _reason(intent: Mapping[str, Any]) -> str:
    return _text(intent.get("cancellation_reason")) or "canceled"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _redact(text: str | None, secret: str) -> str | None:
    if text is None or not secret:
        return text
    return text.replace(secret, "[redacted]")
