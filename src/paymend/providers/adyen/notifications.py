"""Adyen's standard webhooks (notifications): HMAC-verified before anything is believed,
answered `[accepted]` so Adyen stops resending.

A webhook is a JSON POST `{"live": "false", "notificationItems": [{"NotificationRequestItem":
{…}}]}` (https://docs.adyen.com/development-resources/webhooks/webhook-types/). Each
item carries its own signature in `additionalData.hmacSignature`: base64 of
HMAC-SHA256, keyed with the hex-decoded HMAC key from the Customer Area, over
`pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:
eventCode:success`, empty fields kept empty
(https://docs.adyen.com/development-resources/webhooks/verify-hmac-signatures/). Every
item must verify, or the whole webhook is refused (400: nothing changes, Adyen retries).

Events read (https://docs.adyen.com/development-resources/webhooks/webhook-types/
#event-codes): AUTHORISATION (`success` true: authorised; false: refused, `reason` says
why) and CANCELLATION, whose `merchantReference` is the payment's `reference`, the
attempt's idempotency key; REFUND (`success` true: paid back; false: refused) and
REFUND_FAILED (the refund failed after Adyen took it), whose `merchantReference` is the
refund request's `reference`, the refund's idempotency key, and `originalReference` the
payment's pspReference (https://docs.adyen.com/online-payments/refund/#refund-webhook,
https://docs.adyen.com/online-payments/refund/#refund-failed): they settle the refund.
Adyen expects HTTP 2xx, and `[accepted]` in the body
(https://docs.adyen.com/development-resources/webhooks/#accept-webhooks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from paymend.providers.adyen import mapping
from paymend.providers.base import (
    NotificationReply,
    ProviderNotification,
    ProviderOutcome,
    ProviderResult,
)

ACCEPTED = NotificationReply(b"[accepted]", "text/plain")
SIGNED_FIELDS = "pspReference originalReference merchantAccountCode merchantReference".split()
MAX_ITEMS = 100
REFUND_EVENTS = frozenset({"REFUND", "REFUND_FAILED"})


def signing_string(item: Mapping[str, Any]) -> str:
    """The text an item's HMAC covers, in Adyen's order."""
    found = item.get("amount")
    amount: Mapping[str, Any] = found if isinstance(found, dict) else {}
    values = [_text(item.get(name)) for name in SIGNED_FIELDS]
    values += [_text(amount.get("value")), _text(amount.get("currency"))]
    values += [_text(item.get("eventCode")), _text(item.get("success"))]
    return ":".join(values)


def sign(item: Mapping[str, Any], hmac_key_hex: str) -> str:
    """The item's `hmacSignature` under a hex HMAC key (what Adyen sends; the simulator
    signs with it too)."""
    key = binascii.unhexlify(hmac_key_hex)
    digest = hmac.new(key, signing_string(item).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verified(item: Mapping[str, Any], hmac_key_hex: str) -> bool:
    additional = item.get("additionalData")
    given = additional.get("hmacSignature") if isinstance(additional, dict) else None
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(sign(item, hmac_key_hex), given)


def items(body: bytes) -> list[dict[str, Any]]:
    """The webhook's NotificationRequestItems; ValueError for any other shape."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("not a JSON body") from None
    found = document.get("notificationItems") if isinstance(document, dict) else None
    if not isinstance(found, list) or not 0 < len(found) <= MAX_ITEMS:
        raise ValueError("no notificationItems")
    result = []
    for entry in found:
        item = entry.get("NotificationRequestItem") if isinstance(entry, dict) else None
        if not isinstance(item, dict):
            raise ValueError("an entry without a NotificationRequestItem")
        result.append(item)
    return result


def read(body: bytes, hmac_key_hex: str, merchant_account: str) -> ProviderNotification:
    """The verified notification (its AUTHORISATION item when it carries several);
    ValueError for one that is malformed, unsigned, signed with another key, or meant
    for another merchant account."""
    found = items(body)
    for item in found:
        if not verified(item, hmac_key_hex):
            raise ValueError("an item's hmacSignature does not verify with the HMAC key")
    # verified: now it may be read
    for item in found:
        if item.get("merchantAccountCode") != merchant_account:
            raise ValueError("signed for another merchant account")
    item = next((i for i in found if i.get("eventCode") == "AUTHORISATION"), found[0])
    event = str(item.get("eventCode", ""))
    psp = _text(item.get("pspReference")) or None
    success = _text(item.get("success")) == "true"
    reason = _text(item.get("reason"))
    message = f"notification {event} success={_text(item.get('success'))}"
    if reason:
        message += f"; reason={reason}"
    key: str | None = _text(item.get("merchantReference")) or None
    if event in REFUND_EVENTS:
        ok = event == "REFUND" and success
        code = event if ok else (reason or event)
        outcome = ProviderOutcome.SUCCEEDED if ok else ProviderOutcome.DECLINED
        return ProviderNotification(
            idempotency_key=None,
            reference=psp,
            result=ProviderResult(outcome, code, message, psp),
            reply=ACCEPTED,
            amount=mapping.money(item.get("amount")),
            refund_key=key,
        )
    result = _event(event, success, reason, psp, message)
    if event not in ("AUTHORISATION", "CANCELLATION"):
        key = None  # about nothing paymend settles: acknowledged, nothing changes
    amount = mapping.money(item.get("amount")) if event == "AUTHORISATION" else None
    return ProviderNotification(
        idempotency_key=key, reference=psp, result=result, reply=ACCEPTED, amount=amount
    )


def _event(event: str, success: bool, reason: str, psp: str | None, message: str) -> ProviderResult:
    """An item read as a status query's answer about the payment it names."""
    if event == "AUTHORISATION":
        if success:
            return ProviderResult(ProviderOutcome.SUCCEEDED, mapping.AUTHORISED, message, psp)
        # the reason is the refusalReason text (adyen.yaml's refusal_reason field)
        return ProviderResult(ProviderOutcome.DECLINED, reason or "Refused", message, psp)
    if event == "CANCELLATION" and success:  # the authorisation is void: nothing charged
        return ProviderResult(ProviderOutcome.DECLINED, "Cancelled", message, psp)
    return ProviderResult(ProviderOutcome.PENDING, event or "UNKNOWN_EVENT", message, psp)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
