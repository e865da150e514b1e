"""What the Adyen Checkout face does with each call, over a simulated channel.

The simulated channel (providers/simulator.py) decides every payment with its fault
injection: a stored payment method id (or encrypted card number) starting `sim_` forces
an outcome as its tokens do (`sim_decline_insufficient_funds`, `sim_timeout_charged`,
`sim_lost_response`, `sim_error_system_error`, `sim_3ds`), and its rates draw the rest.
Its ledger is Adyen's truth: a payment is authorised when the ledger holds the charge
under the payment's `reference`, whatever became of the answer. Here the simulator's
codes become Adyen's: the refusal reasons of https://docs.adyen.com/development-resources/
refusal-reasons/ and the error objects of https://docs.adyen.com/development-resources/
response-handling/.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from paymend.domain.money import Money
from paymend.providers.adyen import mapping
from paymend.providers.base import (
    ChargeRequest,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
    RefundRequest,
)
from paymend.providers.simulator import ChargeState, SimulatedProvider

# the simulator's decline codes as Adyen's refusals: (refusalReason, refusalReasonCode)
REFUSALS = {
    "INSUFFICIENT_FUNDS": ("Not enough balance", "12"),
    "DO_NOT_HONOR": ("Refused", "2"),
    "EXPIRED_CARD": ("Expired Card", "6"),
    "INCORRECT_DETAILS": ("CVC Declined", "24"),
    "SUSPECTED_FRAUD": ("FRAUD", "20"),
    "LOST_CARD": ("Blocked Card", "5"),
    "LIMIT_EXCEEDED": ("Withdrawal amount exceeded", "28"),
    "BANK_RESTRICTION": ("Restricted Card", "25"),
}
# its error codes as Adyen's error answers: (HTTP status, errorCode, errorType, message)
ERRORS = {
    "SYSTEM_ERROR": (500, "99_500", "internal", "Error processing request"),
    "RATE_LIMITED": (500, "99_500", "internal", "Error processing request"),
    "TOKEN_EXPIRED": (401, "000", "security", "HTTP Status Response - Unauthorized"),
    "INVALID_PARAMETER": (422, "100", "validation", "Required object 'amount' is not provided"),
}


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer of the face: its HTTP status and JSON object."""

    status: int
    body: dict[str, Any]


def failure(status: int, code: str, kind: str, message: str) -> Reply:
    return Reply(
        status, {"status": status, "errorCode": code, "message": message, "errorType": kind}
    )


def token_of(payment_method: object) -> str | None:
    """The simulator's token in a paymentMethod: the stored id or the encrypted number."""
    if not isinstance(payment_method, dict):
        return None
    for name in ("storedPaymentMethodId", "encryptedCardNumber"):
        value = payment_method.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def answer(
    key: str, result: ProviderResult, amount: Money, base: str, native_3ds: bool = False
) -> Reply:
    """A `/payments` answer for what the simulated channel decided. 3-D Secure is a
    redirect to the issuer's page (`RedirectShopper`), or with `native_3ds` a challenge
    in the page (`ChallengeShopper`, action `threeDS2`: https://docs.adyen.com/
    online-payments/3d-secure/native-3ds2/api-integration/)."""
    common = {"pspReference": result.reference, "merchantReference": key}
    value = mapping.amount(amount)
    if result.outcome is ProviderOutcome.SUCCEEDED:
        return Reply(200, {**common, "resultCode": "Authorised", "amount": value})
    if result.outcome is ProviderOutcome.REQUIRES_ACTION and native_3ds:
        action = {
            "type": "threeDS2",
            "subtype": "challenge",
            "paymentMethodType": "scheme",
            "token": base64.b64encode(
                json.dumps({"acsURL": f"{base}/sim/3ds2/{key}", "messageVersion": "2.2.0"}).encode()
            ).decode(),
            "authorisationToken": f"sim-auth-{key}",
        }
        return Reply(200, {**common, "resultCode": "ChallengeShopper", "action": action})
    if result.outcome is ProviderOutcome.REQUIRES_ACTION:
        action = {
            "type": "redirect",
            "paymentMethodType": "scheme",
            "method": "GET",
            "url": f"{base}/sim/3ds/{key}",
        }
        return Reply(200, {**common, "resultCode": "RedirectShopper", "action": action})
    if result.outcome is ProviderOutcome.DECLINED:
        reason, code = REFUSALS.get(result.raw_code or "", ("Refused", "2"))
        body = {"resultCode": "Refused", "refusalReason": reason, "refusalReasonCode": code}
        return Reply(200, {**common, **body, "amount": value})
    return failure(*ERRORS.get(result.raw_code or "", ERRORS["SYSTEM_ERROR"]))


@dataclass(slots=True)
class Payments:
    """Adyen's payments for one merchant account, over the simulated channel."""

    channel: SimulatedProvider
    native_3ds: bool = False  # 3-D Secure in the page (threeDS2) instead of a redirect
    return_urls: dict[str, str] = field(default_factory=dict)  # reference -> returnUrl
    # what the shopper's return brings (redirectResult / threeDSResult) -> reference
    results: dict[str, str] = field(default_factory=dict)

    def shopper_returns(self, key: str) -> str | None:
        """The shopper passed 3-D Secure for the payment `key`: the opaque result their
        return brings (Adyen appends `redirectResult` to the returnUrl; the 3-D Secure
        component gives `threeDSResult`), which `/payments/details` takes. None if there
        is no such payment waiting."""
        charge = self.channel.ledger.get(key)
        if charge is None or charge.state is not ChargeState.AWAITING_AUTHENTICATION:
            return None
        token = "sim" + secrets.token_urlsafe(24)
        self.results[token] = key
        return token

    async def pay(self, body: dict[str, Any], base: str) -> Reply:
        """`/payments`. May raise ProviderConnectionError: the call hangs or its answer
        is lost (the face drops the connection), charged or not."""
        key = body.get("reference")
        amount = mapping.money(body.get("amount"))
        if not isinstance(key, str) or not key or amount is None or amount.minor <= 0:
            return failure(422, "100", "validation", "Required object 'amount' is not provided")
        if not isinstance(body.get("paymentMethod"), dict):
            return failure(422, "00_422", "validation", "paymentMethod is required")
        token = token_of(body["paymentMethod"])
        if isinstance(body.get("returnUrl"), str):
            self.return_urls[key] = body["returnUrl"]
        result = await self.channel.authorize(ChargeRequest(key, key, amount, "card", token=token))
        return answer(key, result, amount, base, self.native_3ds)

    async def details(self, body: dict[str, Any], base: str) -> Reply:
        """`/payments/details`: the shopper came back from 3-D Secure with the
        `redirectResult` (or `threeDSResult`) that `shopper_returns` made; only then is
        the payment authorised. Anything else is Adyen's validation error."""
        details = body.get("details")
        given = details if isinstance(details, dict) else {}
        token = given.get("redirectResult") or given.get("threeDSResult")
        key = self.results.get(token) if isinstance(token, str) else None
        charge = self.channel.ledger.get(key) if key else None
        if charge is None:
            return failure(422, "00_422", "validation", "Invalid payment details")
        result = await self.channel.confirm(QueryRequest(charge.idempotency_key, charge.payment_id))
        return answer(charge.idempotency_key, result, charge.amount, base)

    async def refund(self, psp: str, body: dict[str, Any], key: str | None) -> Reply:
        """`/payments/{pspReference}/refunds`: `received`, or a validation error."""
        amount = mapping.money(body.get("amount"))
        charge = self.channel.ledger.by_reference(psp)
        if charge is None or charge.state is not ChargeState.CHARGED:
            return failure(422, "167", "validation", "Original pspReference required")
        if amount is None or amount.currency != charge.amount.currency:
            return failure(422, "100", "validation", "Required object 'amount' is not provided")
        reference = str(body.get("reference") or key or "")
        result = await self.channel.refund(RefundRequest(key or reference, psp, amount))
        if result.outcome is not ProviderOutcome.SUCCEEDED:
            return failure(422, "00_422", "validation", "Refund amount exceeds the payment")
        return Reply(
            201,
            {
                "merchantAccount": body.get("merchantAccount"),
                "paymentPspReference": psp,
                "pspReference": result.reference,
                "reference": reference,
                "status": "received",
                "amount": body.get("amount"),
            },
        )

    async def cancel(self, body: dict[str, Any], psp: str | None) -> Reply:
        """`/cancels` by our reference, or `/payments/{pspReference}/cancels`: the
        authorisation is voided (the simulator gives its money back)."""
        ledger = self.channel.ledger
        reference = body.get("paymentReference")
        charge = ledger.by_reference(psp) if psp else ledger.get(str(reference or ""))
        if charge is not None and charge.state is ChargeState.AWAITING_AUTHENTICATION:
            # the shopper never finished 3-D Secure: the payment can no longer complete
            charge.state = ChargeState.DECLINED
            charge.result = ProviderResult(
                ProviderOutcome.DECLINED, "Cancelled", "cancelled", charge.reference
            )
            ledger.put(charge)
        if charge is not None and charge.state is ChargeState.CHARGED:
            left = charge.amount.minor - charge.refunded
            if left > 0:
                void = RefundRequest(f"cancel_{charge.idempotency_key}", charge.reference,
                                     Money(left, charge.amount.currency))  # fmt: skip
                await self.channel.refund(void)
        return Reply(
            201,
            {
                "merchantAccount": body.get("merchantAccount"),
                "paymentReference": reference,
                "paymentPspReference": charge.reference if charge else psp,
                "pspReference": f"cx_{charge.reference if charge else reference}",
                "reference": body.get("reference"),
                "status": "received",
            },
        )
