"""The Adyen channel: paymend's Provider over Adyen's Checkout API v71.

- `authorize`: `POST /payments` with the attempt's idempotency key as both `reference`
  and the `Idempotency-Key` header; the payment token is the `paymentMethod` (the JSON
  object Drop-in / Components give, with encrypted card fields) or a stored payment
  method's id. `RedirectShopper` / `IdentifyShopper` / `ChallengeShopper` answer
  `requires_action` with Adyen's `action` as the next action.
- `confirm` (the engine's, after the shop's `POST /v1/payments/{id}/confirm` with
  `details`): `POST /payments/details` with what the shopper's return brought
  (`redirectResult`, `threeDSResult`); the AUTHORISATION notification settles the
  payment too.
- `query`: Checkout has no lookup by reference. What Adyen documents after a lost
  answer is to send the same request again with the same Idempotency-Key: Adyen answers
  the first request's result and makes no second payment
  (https://docs.adyen.com/development-resources/api-idempotency/). So the connector
  keeps each request whose outcome it does not know yet, in memory only (it holds
  encrypted card fields, which paymend never stores), and a query repeats it. A request
  that never reached Adyen is made by that repeat, and its answer is this attempt's: one
  payment either way. Without the kept request (another process, a restart) the query
  answers `pending`, never "not charged": the outcome stays unknown until Adyen's
  AUTHORISATION notification, which Adyen sends for every payment, settles it.
- `refund`: `POST /payments/{pspReference}/refunds`; `cancel` / `close_unpaid`: `POST
  /cancels` by our reference (no pspReference needed); both with an Idempotency-Key,
  answered `received`: pending until the REFUND / CANCELLATION notification.
- `settlements`: the Settlement details report at `report_url`; `parse_notification`:
  HMAC-verified standard webhooks; `check`: `POST /paymentMethods`, which moves no money.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import httpx

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.providers.adyen import mapping, notifications, report
from paymend.providers.adyen.client import AdyenClient
from paymend.providers.answers import Answer, AnswerNotTrusted
from paymend.providers.base import (
    ChargeRequest,
    CheckResult,
    ProviderConnectionError,
    ProviderNotification,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
    RefundRequest,
    SettlementLine,
)

KEPT_REQUESTS = 10_000  # requests of unknown outcome kept for a repeat (oldest dropped)
# what /payments/details takes from the shopper's return (the shop's confirm passes them)
DETAILS = frozenset({"redirectResult", "threeDSResult"})


class AdyenProvider:
    """One Adyen merchant account as a paymend channel."""

    code_map = "adyen"

    def __init__(
        self,
        name: str,
        client: AdyenClient,
        capabilities: Capabilities,
        *,
        hmac_key: str,
        return_url: str,
        report_url: str | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.capabilities = capabilities
        self._hmac_key = hmac_key
        self.return_url = return_url
        self.report_url = report_url
        self._unsettled: OrderedDict[str, dict[str, Any]] = OrderedDict()

    # -- the Provider protocol ---------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        try:
            body = {
                "amount": mapping.amount(request.amount),
                "reference": request.idempotency_key,
                "merchantAccount": self.client.merchant_account,
                "paymentMethod": payment_method(request.token),
                "returnUrl": self.return_url,
            }
        except ValueError as exc:  # nothing was sent
            return ProviderResult(ProviderOutcome.ERROR, "100", f"not sent: {exc}")
        if request.metadata.get("shopper_reference"):
            body["shopperReference"] = request.metadata["shopper_reference"]
            body["shopperInteraction"] = "ContAuth"
            body["recurringProcessingModel"] = "CardOnFile"
        self._keep(request.idempotency_key, body)
        return await self._payment("payments", body, request.idempotency_key)

    async def query(self, request: QueryRequest) -> ProviderResult:
        """The first request's answer, by repeating it under its Idempotency-Key."""
        body = self._unsettled.get(request.idempotency_key)
        if body is None:
            return ProviderResult(
                ProviderOutcome.PENDING,
                "Pending",
                "no kept request to repeat: waiting for Adyen's AUTHORISATION notification",
            )
        return await self._payment("payments", body, request.idempotency_key)

    async def confirm(self, request: QueryRequest) -> ProviderResult:
        """After the shopper's redirect or 3-D Secure (ConfirmsAuthentication):
        `POST /payments/details` with what their return brought, passed on by the shop's
        confirm: `redirectResult` (from the returnUrl's query) or `threeDSResult` (from
        the 3-D Secure component's `onAdditionalDetails`)
        (https://docs.adyen.com/online-payments/3d-secure/redirect-3ds2/web-drop-in/#handle-the-redirect,
        https://docs.adyen.com/online-payments/3d-secure/native-3ds2/web-drop-in/).
        Without details it cannot complete: the status query answers."""
        details = {k: v for k, v in request.details.items() if k in DETAILS and v}
        if not details:
            return await self.query(request)
        return await self.details(request.idempotency_key, details)

    async def details(self, idempotency_key: str, details: dict[str, str]) -> ProviderResult:
        """`/payments/details`: the payment after the shopper's redirect or 3-D Secure,
        under an Idempotency-Key of its own (a repeat is answered the same)."""
        return await self._payment(
            "payments/details", {"details": details}, idempotency_key, f"{idempotency_key}:details"
        )

    async def close_unpaid(self, request: QueryRequest) -> ProviderResult:
        """The engine's cancel of a payment waiting on the shopper: `POST /cancels` by
        our reference (https://docs.adyen.com/online-payments/cancel/#cancel-without-psp-reference).
        Adyen answers `received` and its CANCELLATION webhook tells the outcome: PENDING
        here. A payment authorised meanwhile is not cancelled once captured; its
        AUTHORISATION webhook then counts it (a late success on a cancelled payment,
        refunded automatically)."""
        return await self.cancel(request.idempotency_key)

    async def aclose(self) -> None:
        """Close the HTTP connections of the running loop (the runtime's stop)."""
        await self.client.aclose()

    async def refund(self, request: RefundRequest) -> ProviderResult:
        try:
            value = mapping.amount(request.amount)
        except ValueError as exc:  # nothing was sent
            return ProviderResult(ProviderOutcome.DECLINED, "100", f"not sent: {exc}")
        body = {
            "amount": value,
            "reference": request.idempotency_key,
            "merchantAccount": self.client.merchant_account,
        }
        path = f"payments/{request.charge_reference}/refunds"
        # `received` is PENDING: the worker repeats the request under the same key (Adyen
        # answers it the same, never a second refund) until the REFUND webhook settles it
        return await self._modification(path, body, request.idempotency_key)

    async def cancel(self, idempotency_key: str) -> ProviderResult:
        """Cancel the authorisation made under our reference (`POST /cancels`)."""
        body = {
            "paymentReference": idempotency_key,
            "reference": f"cancel-{idempotency_key}",
            "merchantAccount": self.client.merchant_account,
        }
        return await self._modification("cancels", body, f"cancel-{idempotency_key}")

    async def settlements(self) -> list[SettlementLine]:
        """The payments of the Settlement details report at `report_url`."""
        if not self.report_url:
            raise ProviderConnectionError(
                "NO_REPORT_URL", f"{self.name}: no report_url is configured", sent=False
            )
        content = await self.client.download(self.report_url)
        try:
            return report.parse(content)
        except ValueError as exc:
            raise ProviderConnectionError("REPORT_UNREADABLE", str(exc), sent=False) from None

    def parse_notification(self, headers: Any, body: bytes) -> ProviderNotification:
        return notifications.read(body, self._hmac_key, self.client.merchant_account)

    async def check(self) -> CheckResult:
        """The API key and the merchant account work: `/paymentMethods` lists what the
        account takes and moves no money."""
        try:
            answer = await self.client.call(
                "paymentMethods", {"merchantAccount": self.client.merchant_account}
            )
        except AnswerNotTrusted as exc:
            return CheckResult(False, f"{exc.raw_code}: {exc}")
        except ProviderConnectionError as exc:
            return CheckResult(False, f"{exc.raw_code}: {exc.raw_message}")
        if answer.ok and isinstance(answer.body.get("paymentMethods"), list):
            count = len(answer.body["paymentMethods"])
            return CheckResult(True, f"{self.client.base_url}: {count} payment methods")
        return CheckResult(False, mapping.describe(answer))

    # -- calls ---------------------------------------------------------------------------

    async def _payment(
        self, path: str, body: dict[str, Any], key: str, header_key: str | None = None
    ) -> ProviderResult:
        try:
            answer = await self.client.call(path, body, header_key or key)
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)
        result = mapping.payment(answer)
        if _final(answer, result):
            self._unsettled.pop(key, None)
        return result

    async def _modification(self, path: str, body: dict[str, Any], key: str) -> ProviderResult:
        try:
            answer: Answer = await self.client.call(path, body, key)
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)
        return mapping.modification(answer, key)

    def _keep(self, key: str, body: dict[str, Any]) -> None:
        self._unsettled[key] = body
        self._unsettled.move_to_end(key)
        while len(self._unsettled) > KEPT_REQUESTS:
            self._unsettled.popitem(last=False)


def _final(answer: Answer, result: ProviderResult) -> bool:
    """Adyen has decided: nothing is left to repeat (a 4xx other than 409/704 made no
    payment either)."""
    if result.outcome in (ProviderOutcome.SUCCEEDED, ProviderOutcome.DECLINED):
        return True
    return 400 <= answer.status < 500 and answer.status != 409 and result.raw_code != "704"


def payment_method(token: str | None) -> dict[str, Any]:
    """The `paymentMethod` from the payment's token: the JSON object Adyen's Drop-in or
    Components produce (`{"type": "scheme", "encryptedCardNumber": …}`), or the id of a
    stored payment method."""
    if not token:
        raise ValueError("an Adyen payment needs a payment token")
    if token.lstrip().startswith("{"):
        try:
            found = json.loads(token)
        except json.JSONDecodeError:
            raise ValueError("the payment token is not a JSON paymentMethod") from None
        if not isinstance(found, dict) or not found.get("type"):
            raise ValueError("the payment token is not a paymentMethod object")
        return found
    return {"type": "scheme", "storedPaymentMethodId": token}


def build(spec: Any, clock: Clock) -> AdyenProvider:
    """The registry's builder (providers/registry.py) for `type: adyen`."""
    options = spec.options
    client = AdyenClient(
        base_url=spec.base_url,
        api_key=spec.credentials["api_key"],
        merchant_account=str(options["merchant_account"]),
        timeout_s=spec.timeout_s,
        transport=spec.transport if isinstance(spec.transport, httpx.AsyncBaseTransport) else None,
    )
    return AdyenProvider(
        spec.name,
        client,
        spec.capabilities,
        hmac_key=spec.credentials["hmac_key"],
        return_url=str(options.get("return_url") or ""),
        report_url=options.get("report_url"),
    )
