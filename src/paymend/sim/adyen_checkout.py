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

import httpx

from paymend.domain.money import Money
from paymend.providers.adyen import mapping, notifications, report
from paymend.providers.base import ProviderConnectionError, QueryRequest
from paymend.providers.simulator import ChargeState, SimulatedProvider
from paymend.sim.adyen_payments import REFUSALS, Payments, Reply, failure
from paymend.sim.face import HangClock, Releasable, Scope, base_url, send_response

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
        """What a connector channel needs, by credential name (config.AdyenChannel)."""
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
    report_amounts: dict[str, Money] = field(default_factory=dict)  # psp -> a mismatch
    report_omits: set[str] = field(default_factory=set)  # psp references left out
    payments: Payments = field(init=False)
    released: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    calls: list[str] = field(init=False, default_factory=list)  # paths, in order
    in_flight: set[str] = field(init=False, default_factory=set)  # Idempotency-Keys
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.payments = Payments(self.channel)
        self.channel.clock = HangClock(self.channel.clock, self.channel.settings.hang_s, self)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = await self.request_body(scope, receive, send)
        if body is None:
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.calls.append(path)
        if self.channel.settings.outage:
            await send_response(send, 503, b"Service Unavailable", "text/plain")
            return
        if path.startswith("/sim/3ds/"):  # the shopper passes 3-D Secure in the browser
            done = await self.shopper_authenticates(path.removeprefix("/sim/3ds/"))
            answer = b"authenticated" if done else b"no such payment"
            await send_response(send, 200 if done else 404, answer, "text/plain")
            return
        if headers.get("x-api-key") != self.keys.api_key:
            await _reply(send, failure(401, *UNAUTHORISED))
            return
        if path == REPORT_PATH and scope["method"] == "GET":
            await send_response(send, 200, self.report(), "text/csv")
            return
        try:
            reply = await self._api(path, body, headers.get("idempotency-key"), base_url(scope))
        except ProviderConnectionError as exc:
            if exc.raw_code == "CONNECTION_RESET":  # the answer is lost: drop the line
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", b"1000")]})  # fmt: skip
                raise
            return  # a hang released at shutdown: the caller left long ago
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
                return await self.payments.details(body, base)
            case ["payments", psp, "refunds"]:
                return await self.payments.refund(psp, body, key)
            case ["payments", psp, "cancels"]:
                return await self.payments.cancel(body, psp)
            case ["cancels"]:
                return await self.payments.cancel(body, None)
            case ["paymentMethods"]:
                cards = {"name": "Cards", "type": "scheme", "brands": ["visa", "mc", "amex"]}
                return Reply(200, {"paymentMethods": [cards]})
        return failure(404, "000", "validation", f"no such endpoint /v71/{path}")

    async def shopper_authenticates(self, reference: str) -> bool:
        """The shopper passed the challenge: Adyen authorises the held payment and (with
        `auto_notify`) sends its AUTHORISATION webhook. True if it is authorised now."""
        charge = self.channel.ledger.get(reference)
        if charge is None:
            return False
        await self.channel.confirm(QueryRequest(reference, charge.payment_id))
        charge = self.channel.ledger.get(reference)
        done = charge is not None and charge.state is ChargeState.CHARGED
        if done and self.auto_notify:
            await self.notify(reference)
        return done

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
        async with httpx.AsyncClient(transport=self.notify_transport, timeout=10) as client:
            return await client.post(
                self.webhook_url, content=webhook, headers={"content-type": "application/json"}
            )

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
