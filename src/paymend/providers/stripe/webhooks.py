"""Stripe's signed webhooks, verified and read as ProviderNotifications.

The `Stripe-Signature` header is `t=<unix time>,v1=<hex>[,v1=<hex>...]`, each v1 the
HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint's signing secret
(https://docs.stripe.com/webhooks#verify-manually). The signature is checked by the
SDK's `WebhookSignature.verify_header` (stripe/_webhook.py) with its own tolerance off:
that one reads the wall clock, so the age of the timestamp is checked here against the
injected clock instead, both ways (a signature from the future is as wrong as a stale
one). Nothing of the body is read before the signature holds.

Events read: `payment_intent.succeeded|payment_failed|canceled|requires_action|
processing` (what became of a charge), `charge.refunded`, and `refund.updated`,
`refund.failed` and `charge.refund.updated` (what became of a refund Stripe left
`pending`). Any other type, verified, raises UnsupportedEvent (a NotificationIgnored:
acknowledged, nothing changes): subscribe the endpoint to these types only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe

from paymend.domain.money import Money
from paymend.providers.base import (
    NotificationIgnored,
    ProviderNotification,
    ProviderOutcome,
    ProviderResult,
)
from paymend.providers.stripe.amounts import from_stripe
from paymend.providers.stripe.mapping import ATTEMPT_KEY, REFUND_KEY, intent_result, refund_result

DEFAULT_TOLERANCE_S = 300.0  # the SDK's Webhook.DEFAULT_TOLERANCE
SIGNATURE_HEADER = "Stripe-Signature"
INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.requires_action",
        "payment_intent.processing",
    }
)
REFUND_EVENT = "charge.refunded"
# events whose object is a Refund (https://docs.stripe.com/api/events/types, `refund.updated`:
# "Occurs whenever a refund is updated", `refund.failed`, and the older
# `charge.refund.updated`; since API version 2024-10-28.acacia the `refund.*` ones are sent
# for every refund: https://docs.stripe.com/changelog/acacia/2024-10-28/refund-webhook-update).
# A refund Stripe answered `pending` (https://docs.stripe.com/api/refunds/object#refund_object-status)
# ends `succeeded`, `failed` or `canceled` only here: a create sent again under the same
# Idempotency-Key replays the first, pending, answer.
REFUND_OBJECT_EVENTS = frozenset({"refund.updated", "refund.failed", "charge.refund.updated"})


class BadSignature(ValueError):
    """The notification does not verify: refuse it, change nothing."""


class UnsupportedEvent(NotificationIgnored):
    """A verified event of a type this connector does not read: acknowledged (2xx) so
    Stripe stops resending it, and nothing changes."""


def parse(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: datetime,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> ProviderNotification:
    """The notification in `body`, once its signature and timestamp hold."""
    verify(headers, body, secret, now, tolerance_s)
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise BadSignature("a signed body that is not JSON") from exc
    if not isinstance(event, dict):
        raise BadSignature("a signed body that is not an event")
    kind = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise UnsupportedEvent(f"event {kind!r} carries no object")
    if kind in INTENT_EVENTS:
        result = intent_result(obj)
        return ProviderNotification(_attempt(obj), result.reference, result, amount=_amount(obj))
    if kind == REFUND_EVENT:
        return _refunded(obj)
    if kind in REFUND_OBJECT_EVENTS:
        return _refund(obj)
    raise UnsupportedEvent(f"event type {kind!r} is not read by the Stripe connector")


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    now: datetime,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise BadSignature unless a v1 signature of `body` under `secret` is in the
    header and its timestamp is within `tolerance_s` of `now`."""
    header = _header(headers)
    if header is None:
        raise BadSignature(f"no {SIGNATURE_HEADER} header")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadSignature("the body is not UTF-8") from exc
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(str(exc.user_message or "signature does not verify")) from exc
    stamp = _timestamp(header)
    if abs(now.timestamp() - stamp) > tolerance_s:
        raise BadSignature(f"timestamp {stamp} is more than {tolerance_s:g}s from now")


def _header(headers: Mapping[str, str]) -> str | None:
    wanted = SIGNATURE_HEADER.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _timestamp(header: str) -> int:
    # verify_header has parsed it already: the first t= item is an integer
    return next(int(v) for k, _, v in (i.partition("=") for i in header.split(",")) if k == "t")


def _attempt(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get(ATTEMPT_KEY), str):
        return str(metadata[ATTEMPT_KEY])
    return None


def _amount(intent: Mapping[str, Any]) -> Money | None:
    """The PaymentIntent's amount, which the engine checks against the attempt's before
    it settles anything; None when the event does not carry one it can read."""
    amount, currency = intent.get("amount"), intent.get("currency")
    if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
        return None
    try:
        return from_stripe(amount, currency)
    except ValueError:
        return None


def _refunded(charge: Mapping[str, Any]) -> ProviderNotification:
    """A refund on a charge: the charge (named by its PaymentIntent, paymend's
    reference) still succeeded; `raw` says how much of it is refunded now."""
    intent = charge.get("payment_intent")
    reference = intent if isinstance(intent, str) else None
    if isinstance(intent, Mapping) and isinstance(intent.get("id"), str):
        reference = str(intent["id"])
    raw = {
        "charge": charge.get("id"),
        "amount": charge.get("amount"),
        "amount_refunded": charge.get("amount_refunded"),
        "currency": charge.get("currency"),
        "refunded": charge.get("refunded"),
    }
    result = ProviderResult(
        ProviderOutcome.SUCCEEDED, REFUND_EVENT, "charge refunded", reference, raw
    )
    return ProviderNotification(_attempt(charge), reference, result)


def _refund(refund: Mapping[str, Any]) -> ProviderNotification:
    """A Refund's new status, about the refund paymend made under the key in its
    `metadata[paymend_refund]` (client.py `refund` sets it). `succeeded` settles it,
    `failed`/`canceled` fail it (with its `failure_reason`), `pending` or
    `requires_action` change nothing yet; a refund without our key (made in the
    Dashboard) is acknowledged and changes nothing."""
    metadata = refund.get("metadata")
    key = metadata.get(REFUND_KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(key, str) or not key:
        raise UnsupportedEvent("a refund paymend did not make (no metadata[paymend_refund])")
    result = refund_result(refund)
    intent = refund.get("payment_intent")
    return ProviderNotification(
        idempotency_key=None,
        reference=intent if isinstance(intent, str) else None,
        result=result,
        amount=_amount(refund),
        refund_key=key,
    )
