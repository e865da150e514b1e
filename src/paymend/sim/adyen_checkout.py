"""The simulator's Adyen Checkout face: Adyen's Checkout API v71 in front of a simulated
channel, so the shipped Adyen connector runs against it unchanged.

It takes what Adyen takes (JSON POSTs under `/v71/` with the API key in `X-API-Key`),
refuses a wrong key as Adyen does (401, errorCode 000) and another merchant account
(403, errorCode 010), and honours `Idempotency-Key`
(https://docs.adyen.com/development-resources/api-idempotency/): a repeated key gets the
first request's answer and never a second payment; a repeat while the first is still
being processed gets 409, errorCode 704. It sends HMAC-signed standard webhooks to the
webhook URL (the Customer Area's setting; here `webhook_url`), and serves the Settlement
details report at `/reports/settlement_detail_report_batch_1.csv`.

The simulated channel's faults reach the wire: a hung call holds the request until the
caller gives up (`release` ends every hang, for a clean shutdown), a lost response
starts the answer and drops the connection, an outage answers 503. An ASGI app:
`uvicorn.Server` on 127.0.0.1 in tests and demos, or `httpx.ASGITransport` in-process.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from paymend.domain.money import Money
from paymend.providers.adyen import mapping, notifications, report
from paymend.providers.simulator import ChargeState, SimulatedProvider
from paymend.sim.adyen_payments import REFUSALS, Payments, Reply, failure
from paymend.sim.face import (
    HangClock,
    Releasable,
    Scope,
    base_url,
    deliver,
    outage,
    send_response,
    through_faults,
)

REPORT_PATH = "/reports/settlement_detail_report_batch_1.csv"
UNAUTHORISED = ("000", "security", "HTTP Status Response - Unauthorized")


@dataclass(frozen=True, slots=True)
class FaceKeys:
    """The merchant account's API key and webhook HMAC key (hex), made locally."""

    merchant_account: str
    api_key: str
    hmac_key: str

    @classmethod
    def generate(cls, merchant_account: str = "PaymendECOM") -> FaceKeys:
        return cls(merchant_account, "AQE" + secrets.token_urlsafe(32), secrets.token_hex(32))

    def credentials(self) -> dict[str, str]:
        """What a connector channel needs, by credential name (config/channels.py AdyenChannel)."""
        return {"api_key": self.api_key, "hmac_key": self.hmac_key}


@dataclass
class AdyenCheckout(Releasable):
    """The face: an ASGI app over one simulated channel."""

    keys: FaceKeys
    channel: SimulatedProvider
    webhook_url: str | None = None  # where its webhooks go (the Customer Area setting)
    # how webhooks travel: None, the network; or a transport (paymend in-process)
    notify_transport: httpx.AsyncBaseTransport | None = None
    auto_notify: bool = False  # send each payment's AUTHORISATION as soon as decided
    # a repeated Idempotency-Key answers 500 (errorCode 99_500): only a webhook can tell
    failing_repeats: bool = False
    native_3ds: bool = False  # 3-D Secure in the page (threeDS2), not by redirect
    report_amounts: dict[str, Money] = field(default_factory=dict)  # psp -> a mismatch
    report_omits: set[str] = field(default_factory=set)  # psp references left out
    payments: Payments = field(init=False)
    released: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    calls: list[str] = field(init=False, default_factory=list)  # paths, in order
    in_flight: set[str] = field(init=False, default_factory=set)  # Idempotency-Keys
    refunds: dict[str, dict[str, Any]] = field(init=False, default_factory=dict)  # by reference
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.payments = Payments(self.channel, self.native_3ds)
        self.channel.clock = HangClock(self.channel.clock, self.channel.settings.hang_s, self)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = await self.request_body(scope, receive, send)
        if body is None:
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.calls.append(path)
        if await outage(send, self.channel.settings.outage):
            return
        if path.startswith("/sim/3ds"):  # the shopper passes 3-D Secure in the browser
            await self._shopper(send, path)
            return
        if headers.get("x-api-key") != self.keys.api_key:
            await _reply(send, failure(401, *UNAUTHORISED))
            return
        if path == REPORT_PATH and scope["method"] == "GET":
            await send_response(send, 200, self.report(), "text/csv")
            return
        call = self._api(path, body, headers.get("idempotency-key"), base_url(scope))
        reply = await through_faults(send, call)
        if reply is not None:
            await _reply(send, reply)

    async def _api(self, path: str, raw: bytes, key: str | None, base: str) -> Reply:
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return failure(400, "000", "validation", "Unable to parse message")
        if body.get("merchantAccount", self.keys.merchant_account) != self.keys.merchant_account:
            return failure(403, "010", "security", "Not allowed")
        if key is not None and key in self.in_flight:
            if self.failing_repeats:
                return failure(500, "99_500", "internal", "Error processing request")
            if self.channel.ledger.get(key) is None:  # still being processed
                return failure(409, "704", "validation", "request already processed or in progress")
        first = key is not None and key not in self.in_flight
        if first and key is not None:
            self.in_flight.add(key)
        try:
            return await self._route(path.removeprefix("/v71/"), body, key, base)
        finally:
            if first and key is not None:
                self.in_flight.discard(key)

    async def _route(self, path: str, body: dict[str, Any], key: str | None, base: str) -> Reply:
        parts = path.split("/")
        match parts:
            case ["payments"]:
                reply = await self.payments.pay(body, base)
                if self.auto_notify and reply.status == 200:
                    asyncio.get_running_loop().create_task(self.notify(str(body["reference"])))
                return reply
            case ["payments", "details"]:
                reply = await self.payments.details(body, base)
                if self.auto_notify and reply.body.get("resultCode") == "Authorised":
                    ref = str(reply.body.get("merchantReference", ""))
                    asyncio.get_running_loop().create_task(self.notify(ref))
                return reply
            case ["payments", psp, "refunds"]:
                reply = await self.payments.refund(psp, body, key)
                if reply.status == 201:
                    self.refunds[str(reply.body["reference"])] = reply.body
                    if self.auto_notify:
                        ref = str(reply.body["reference"])
                        asyncio.get_running_loop().create_task(self.notify_refund(ref))
                return reply
            case ["payments", psp, "cancels"]:
                return await self.payments.cancel(body, psp)
            case ["cancels"]:
                reply = await self.payments.cancel(body, None)
                if self.auto_notify:
                    ref = str(body.get("paymentReference", ""))
                    task = self.notify(ref, "CANCELLATION")
                    asyncio.get_running_loop().create_task(task)
                return reply
            case ["paymentMethods"]:
                cards = {"name": "Cards", "type": "scheme", "brands": ["visa", "mc", "amex"]}
                return Reply(200, {"paymentMethods": [cards]})
        return failure(404, "000", "validation", f"no such endpoint /v71/{path}")

    async def _shopper(self, send: Any, path: str) -> None:
        """The shopper passes 3-D Secure: on the issuer's page (`/sim/3ds/{reference}`),
        sent back to the returnUrl with `redirectResult` appended
        (https://docs.adyen.com/online-payments/3d-secure/redirect-3ds2/); or in the page
        (`/sim/3ds2/{reference}`), where the 3-D Secure component hands the checkout a
        `threeDSResult`. Either goes to `/payments/details`, which authorises."""
        reference = path.rsplit("/", 1)[-1]
        token = self.payments.shopper_returns(reference)
        if token is None:
            await send_response(send, 404, b"no such payment waiting", "text/plain")
            return
        if path.startswith("/sim/3ds2/"):
            result = json.dumps({"threeDSResult": token}).encode()
            await send_response(send, 200, result, "application/json")
            return
        back = self.payments.return_urls.get(reference)
        if not back:
            await send_response(send, 200, token.encode(), "text/plain")
            return
        joiner = "&" if "?" in back else "?"
        location = f"{back}{joiner}{urlencode({'redirectResult': token})}"
        await send_response(send, 302, b"", "text/plain", {"Location": location})

    # -- webhooks and the report ---------------------------------------------------------

    def notification(self, reference: str, event: str = "AUTHORISATION") -> bytes | None:
        """The signed webhook Adyen would post about the payment with this reference."""
        charge = self.channel.ledger.get(reference)
        if charge is None or charge.state is ChargeState.AWAITING_AUTHENTICATION:
            return None  # no outcome yet: Adyen tells once the shopper is done
        item: dict[str, Any] = {
            "amount": mapping.amount(charge.amount),
            "eventCode": event,
            "eventDate": self._now().isoformat(timespec="seconds"),
            "merchantAccountCode": self.keys.merchant_account,
            "merchantReference": reference,
            "pspReference": charge.reference,
            "paymentMethod": "visa",
            "success": "true",
        }
        if event == "AUTHORISATION" and charge.state is not ChargeState.CHARGED:
            code = charge.result.raw_code if charge.result else None
            item |= {"success": "false", "reason": REFUSALS.get(code or "", ("Refused",))[0]}
        item["additionalData"] = {"hmacSignature": notifications.sign(item, self.keys.hmac_key)}
        document = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        return json.dumps(document).encode()

    async def notify(self, reference: str, event: str = "AUTHORISATION") -> httpx.Response | None:
        """Post the payment's signed webhook to the webhook URL, once."""
        webhook = self.notification(reference, event)
        if self.webhook_url is None or webhook is None:
            return None
        json_type = {"content-type": "application/json"}
        return await deliver(self.webhook_url, webhook, json_type, self.notify_transport)

    def refund_notification(
        self, reference: str, event: str = "REFUND", success: bool = True, reason: str = ""
    ) -> bytes | None:
        """The signed REFUND (or REFUND_FAILED) webhook about the refund requested under
        `reference`: its `merchantReference` is that reference, `originalReference` the
        payment's pspReference (https://docs.adyen.com/online-payments/refund/#refund-webhook)."""
        asked = self.refunds.get(reference)
        if asked is None:
            return None
        item: dict[str, Any] = {
            "amount": asked["amount"],
            "eventCode": event,
            "eventDate": self._now().isoformat(timespec="seconds"),
            "merchantAccountCode": self.keys.merchant_account,
            "merchantReference": reference,
            "originalReference": asked["paymentPspReference"],
            "pspReference": asked["pspReference"],
            "success": "true" if success else "false",
        }
        if reason:
            item["reason"] = reason
        item["additionalData"] = {"hmacSignature": notifications.sign(item, self.keys.hmac_key)}
        document = {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        return json.dumps(document).encode()

    async def notify_refund(
        self, reference: str, event: str = "REFUND", success: bool = True, reason: str = ""
    ) -> httpx.Response | None:
        """Post the refund's signed webhook to the webhook URL, once."""
        webhook = self.refund_notification(reference, event, success, reason)
        if self.webhook_url is None or webhook is None:
            return None
        json_type = {"content-type": "application/json"}
        return await deliver(self.webhook_url, webhook, json_type, self.notify_transport)

    def report(self) -> bytes:
        """The Settlement details report: each authorised payment settled, its refunds."""
        rows: list[tuple[str, str, str, str, Money]] = []
        for c in self.channel.ledger.all_charges():
            if c.state is not ChargeState.CHARGED or c.reference in self.report_omits:
                continue
            amount = self.report_amounts.get(c.reference, c.amount)
            rows.append((c.reference, c.idempotency_key, report.SETTLED, "", amount))
            if c.refunded:
                back = Money(c.refunded, c.amount.currency)
                rows.append((c.reference, c.idempotency_key, report.REFUNDED, "", back))
        return report.write(rows, self.keys.merchant_account)

    def _now(self) -> datetime:
        return self.channel.clock.now()


async def _reply(send: Any, reply: Reply) -> None:
    await send_response(send, reply.status, json.dumps(reply.body).encode(), "application/json")
