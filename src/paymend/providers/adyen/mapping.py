"""Adyen's answers as paymend's ProviderResults, and amounts in Adyen's minor units.

The raw code kept on the attempt is the most specific one Adyen gave, as the field
failures/providers/adyen.yaml keys it on: a refusal's `refusalReasonCode` (its
`refusalReason` when the code is missing), else the `resultCode`; for an error answer,
the `errorCode`, else the HTTP status. The message keeps every part (`resultCode`,
`refusalReason`, `refusalReasonCode`, `errorCode`, `message`) as Adyen said it; card
data never comes back from these calls, so nothing needs masking.

Sources: result codes https://docs.adyen.com/online-payments/build-your-integration/
payment-result-codes/, refusal reasons https://docs.adyen.com/development-resources/
refusal-reasons/, errors https://docs.adyen.com/development-resources/response-handling/.
"""

from __future__ import annotations

import json
from typing import Any

from paymend.domain.currencies import exponent
from paymend.domain.money import Money
from paymend.providers.answers import Answer, AnswerNotTrusted
from paymend.providers.base import ProviderOutcome, ProviderResult
from paymend.providers.metrics import UNTRUSTED as UNTRUSTED

AUTHORISED = "Authorised"
FINAL_NO = frozenset({"Refused", "Cancelled"})
WAITING = frozenset({"Pending", "Received"})
# the shopper must act: a 3-D Secure challenge, a redirect, a voucher or QR code
ACTION = frozenset({"RedirectShopper", "IdentifyShopper", "ChallengeShopper", "PresentToShopper"})

# Adyen's minor units where they differ from ISO 4217's (domain/currencies.py): "CLP 2
# (differs from standard)", "CVE 0 (differs from standard)", ISK 2
# (https://docs.adyen.com/development-resources/currency-codes/)
ADYEN_EXPONENTS = {"CLP": 2, "CVE": 0, "ISK": 2}


def adyen_exponent(currency: str) -> int:
    return ADYEN_EXPONENTS.get(currency, exponent(currency))


def amount(money: Money) -> dict[str, Any]:
    """`{"value", "currency"}` in Adyen's minor units; ValueError for an amount Adyen's
    unit cannot carry exactly (CVE with escudo cents)."""
    shift = adyen_exponent(money.currency) - exponent(money.currency)
    if shift >= 0:
        return {"value": money.minor * 10**shift, "currency": money.currency}
    value, rest = divmod(money.minor, 10**-shift)
    if rest:
        raise ValueError(f"Adyen takes {money.currency} in whole units: {money.format()}")
    return {"value": value, "currency": money.currency}


def money(node: object) -> Money | None:
    """An `amount` Adyen sent, as exact Money in ISO minor units (None if malformed)."""
    if not isinstance(node, dict):
        return None
    value, currency = node.get("value"), node.get("currency")
    if not isinstance(value, int) or isinstance(value, bool) or not isinstance(currency, str):
        return None
    try:
        shift = adyen_exponent(currency) - exponent(currency)
    except KeyError:
        return None
    if shift >= 0:
        minor, rest = divmod(value, 10**shift)
        return None if rest else Money(minor, currency)
    return Money(value * 10**-shift, currency)


def describe(answer: Answer) -> str:
    """Every part of Adyen's reason, as it said it (kept on the attempt)."""
    names = ("resultCode", "refusalReason", "refusalReasonCode", "errorCode", "message")
    parts = [f"{n}={answer.body[n]}" for n in names if answer.body.get(n) not in (None, "")]
    if not answer.ok:
        parts.insert(0, f"http={answer.status}")
    return "; ".join(parts)[:500]


def untrusted(provider: str, exc: AnswerNotTrusted) -> ProviderResult:
    """An answer nobody can read: unknown, so the engine asks before anything else (the
    code is in no map: classified unrecognized_response, query first)."""
    UNTRUSTED.labels(provider, exc.raw_code).inc()
    return ProviderResult(ProviderOutcome.ERROR, exc.raw_code, str(exc))


def error(answer: Answer) -> ProviderResult:
    """A non-2xx answer: nothing was done, or (5xx, 704) it may have been. Which is the
    catalogue's call through the errorCode or the HTTP status: 401/403 say the API key
    is wrong (configuration: failover, the channel's health, an ops alert)."""
    code = answer.text("errorCode") or str(answer.status)
    return ProviderResult(ProviderOutcome.ERROR, code, describe(answer), raw=answer.body)


def payment(answer: Answer) -> ProviderResult:
    """`/payments` and `/payments/details`: the resultCode says what became of it."""
    if not answer.ok:
        return error(answer)
    doc = answer.body
    result = answer.text("resultCode")
    reference = answer.text("pspReference")
    message = describe(answer)
    if result == AUTHORISED:
        return ProviderResult(ProviderOutcome.SUCCEEDED, result, message, reference, raw=doc)
    if result in FINAL_NO:
        code = answer.text("refusalReasonCode") or answer.text("refusalReason") or result
        return ProviderResult(ProviderOutcome.DECLINED, code, message, reference, raw=doc)
    if result == "Error":  # an error while processing: whether it happened is unclear
        code = answer.text("refusalReasonCode") or answer.text("refusalReason") or result
        return ProviderResult(ProviderOutcome.ERROR, code, message, reference, raw=doc)
    if result in WAITING:
        return ProviderResult(ProviderOutcome.PENDING, result, message, reference, raw=doc)
    if result in ACTION and isinstance(doc.get("action"), dict):
        return ProviderResult(
            ProviderOutcome.REQUIRES_ACTION,
            result,
            message,
            reference,
            raw={**doc, "next_action": next_action(doc["action"])},
        )
    # no resultCode, or one Adyen added later: unknown, asked about, counted unmapped
    return ProviderResult(ProviderOutcome.ERROR, result or "RESPONSE_UNREADABLE", message)


def next_action(action: dict[str, Any]) -> dict[str, str]:
    """Adyen's `action` for the checkout page. A `redirect` by GET is paymend's
    `redirect` to its `url`; any other (a `redirect` by POST with `data`, `threeDS2`
    in the page, `qrCode`, `voucher`, …) is `sdk` `adyen_checkout`, its parameters the
    whole `action` object, which Drop-in's or Components' `handleAction(action)` takes
    (https://docs.adyen.com/online-payments/build-your-integration/sessions-flow/?platform=Web&integration=Drop-in#handle-the-action).
    An action carries no secret of the merchant: it is made for the shopper's browser."""
    by_get = str(action.get("method", "GET")).upper() == "GET"
    if action.get("type") == "redirect" and action.get("url") and not action.get("data") and by_get:
        return {"type": "redirect", "url": str(action["url"])}
    return {"type": "sdk", "sdk": "adyen_checkout", "parameters": json.dumps(action)}


def modification(answer: Answer, reference: str) -> ProviderResult:
    """A refund or cancel request: Adyen answers `received`, taking the request, and
    tells its outcome later by a REFUND / CANCELLATION notification
    (https://docs.adyen.com/online-payments/refund/#refund-a-payment): PENDING until
    then (the REFUND webhook settles the refund, engine/notifications.py)."""
    if not answer.ok:
        return error(answer)
    status = answer.text("status")
    if status == "received":
        psp = answer.text("pspReference") or reference
        return ProviderResult(
            ProviderOutcome.PENDING, status, describe(answer), psp, raw=answer.body
        )
    return ProviderResult(ProviderOutcome.ERROR, status or "RESPONSE_UNREADABLE", describe(answer))
