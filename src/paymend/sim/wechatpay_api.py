"""The simulator's WeChat Pay API v3 face: WeChat Pay's wire protocol in front of a
simulated channel, so the shipped WeChat Pay connector runs against it unchanged.

It takes what WeChat Pay takes (JSON requests with `Authorization:
WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,timestamp=…,serial_no=…,signature=…`),
verifies the signature with the merchant's public key (and the `mchid` and certificate
serial it knows), and answers as WeChat Pay does: JSON (or 204), signed with its own
"WeChat Pay public key" pair in public-key mode (`Wechatpay-Serial: PUB_KEY_ID_…`); a call
it cannot authenticate gets an unsigned 401 `SIGN_ERROR`. It sends signed notifications
whose resource is encrypted AES-256-GCM with the merchant's APIv3 key to the order's
`notify_url`, and serves the trade bill behind `/v3/bill/tradebill`.

The simulated channel's faults reach the wire as the Alipay face carries them
(sim/alipay_gateway.py): a hung call holds the request until the caller gives up
(`release` ends every hang), a lost response starts the answer and drops the connection,
an outage answers 503. Keys are made locally (`MerchantKeys.generate`).

An ASGI app: `uvicorn.Server` on 127.0.0.1 in tests and demos, or `httpx.ASGITransport`
in-process (the lab).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from paymend.domain.money import Money
from paymend.providers.wechatpay import bill, signing
from paymend.sim.channel import FaceChannel
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
from paymend.sim.wechatpay_trades import BEIJING, Reply, Trades, error

ORDER = re.compile(r"^/v3/pay/transactions/(native|jsapi|h5)$")
BY_NUMBER = re.compile(r"^/v3/pay/transactions/out-trade-no/([^/]+)(/close|/reverse)?$")
BY_ID = re.compile(r"^/v3/pay/transactions/id/([^/]+)$")


@dataclass(frozen=True, slots=True)
class MerchantKeys:
    """The merchant's API key pair (the connector signs with its private half), WeChat
    Pay's public-key pair (the face signs with its private half) and the APIv3 key."""

    mchid: str
    appid: str
    mch_serial_no: str
    merchant_private: rsa.RSAPrivateKey
    wechatpay_private: rsa.RSAPrivateKey
    public_key_id: str
    api_v3_key: str

    @classmethod
    def generate(cls, mchid: str = "1900000109") -> MerchantKeys:
        def new() -> rsa.RSAPrivateKey:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)

        return cls(
            mchid,
            "wxd678efh567hg6787",
            secrets.token_hex(20).upper(),
            new(),
            new(),
            f"PUB_KEY_ID_01{mchid}{secrets.randbelow(10**8):08d}",
            secrets.token_hex(16),
        )

    def credentials(self) -> dict[str, str]:
        """What a connector channel needs, by credential name
        (config/channels.py WechatpayChannel)."""
        return {
            "mch_private_key": signing.private_pem(self.merchant_private),
            "api_v3_key": self.api_v3_key,
            "wechatpay_public_key": signing.public_pem(self.wechatpay_private.public_key()),
        }

    def options(self) -> dict[str, str]:
        """The channel's settings that are not secret."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "mch_serial_no": self.mch_serial_no,
            "wechatpay_public_key_id": self.public_key_id,
        }


@dataclass
class WechatpayApi(Releasable):
    """The face: an ASGI app over one simulated channel."""

    keys: MerchantKeys
    channel: FaceChannel
    # where its notifications go: None, the network; or a transport (paymend in-process)
    notify_transport: httpx.AsyncBaseTransport | None = None
    notify_url: str | None = None  # for orders created without one (codepay takes none)
    auto_notify: bool = False  # notify each paid order as soon as it is paid
    bill_amounts: dict[str, int] = field(default_factory=dict)  # transaction_id -> fen
    bill_omits: set[str] = field(default_factory=set)  # transaction_ids the bill leaves out
    failing_queries: bool = False  # queries answer 500: only a notification can tell
    trades: Trades = field(init=False)
    released: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    calls: list[str] = field(init=False, default_factory=list)  # "METHOD path", in order
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.trades = Trades(self.channel, self.keys.mchid, self.keys.appid)
        self.channel.clock = HangClock(self.channel.clock, self.channel.settings.hang_s, self)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = await self.request_body(scope, receive, send)
        if body is None:
            return
        path, query = scope["path"], scope.get("query_string", b"").decode("latin-1")
        if path.startswith("/sim/"):
            await self._buyer(send, path)
            return
        if path.startswith("/bill/"):
            await send_response(send, 200, self._bill(), "text/csv; charset=utf-8")
            return
        if await outage(send, self.channel.settings.outage):
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        target = f"{path}?{query}" if query else path
        text = body.decode("utf-8", "replace")
        self.calls.append(f"{scope['method']} {path}")
        if not self._authenticated(scope["method"], target, text, headers):
            status, payload = error(401, "SIGN_ERROR", "签名错误，请检查后再试")
            await send_response(send, status, json.dumps(payload, ensure_ascii=False).encode(),
                        "application/json")  # fmt: skip
            return
        reply = await through_faults(
            send, self._api(scope["method"], path, query, text, base_url(scope))
        )
        if reply is None:
            return
        status, answer = reply
        out = "" if answer is None else json.dumps(answer, ensure_ascii=False)
        signed = signing.signed_by(
            self.keys.wechatpay_private, self.keys.public_key_id, out, self._stamp()
        )
        extra = {**signed.headers(), "Request-ID": secrets.token_hex(16)}
        await send_response(send, status, out.encode(), "application/json", extra)

    def _authenticated(self, method: str, target: str, body: str, headers: dict[str, str]) -> bool:
        fields = signing.parse_authorization(headers.get("authorization", ""))
        if fields is None or fields["mchid"] != self.keys.mchid:
            return False
        if fields["serial_no"] != self.keys.mch_serial_no:
            return False
        message = signing.request_message(
            method, target, fields["timestamp"], fields["nonce_str"], body
        )
        return signing.verify(self.keys.merchant_private.public_key(), message, fields["signature"])

    async def _api(self, method: str, path: str, query: str, text: str, base: str) -> Reply:
        try:
            body = json.loads(text) if text else {}
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return error(400, "PARAM_ERROR", "请求体不是 JSON 对象")
        params = dict(parse_qsl(query))
        t = self.trades
        if method == "POST" and path == "/v3/pay/transactions/codepay":
            status, answer = await t.codepay(body)
            if self.auto_notify and status == 200:
                asyncio.get_running_loop().create_task(self.notify(str(body["out_trade_no"])))
            return status, answer
        if method == "POST" and (order := ORDER.match(path)):
            if body.get("notify_url") and body.get("out_trade_no"):
                t.notify_urls[str(body["out_trade_no"])] = str(body["notify_url"])
            return t.order(order.group(1), body, base)
        if (found := BY_NUMBER.match(path)) and (method, found.group(2)) == ("POST", "/close"):
            return t.close(found.group(1))
        if found and (method, found.group(2)) == ("POST", "/reverse"):
            return await t.reverse(found.group(1), body)
        if method == "GET" and found:
            if self.failing_queries:
                return error(500, "SYSTEM_ERROR", "系统繁忙，请稍后重试")
            return t.query(found.group(1))
        if method == "GET" and (by_id := BY_ID.match(path)):
            return t.by_id(by_id.group(1))
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return await t.refund(body)
        if method == "GET" and path == "/v3/bill/tradebill":
            day = params.get("bill_date", "")
            content = self._bill()
            return 200, {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
                "download_url": f"{base}/bill/{day}.csv?token=sim",
            }
        return error(404, "RESOURCE_NOT_EXISTS", f"no such API: {method} {path}")

    async def _buyer(self, send: Any, path: str) -> None:
        """What the buyer does: pays (`/sim/pay/{out_trade_no}`), or opens the H5 page."""
        number = path.rsplit("/", 1)[-1]
        if path.startswith("/sim/confirm/"):  # the buyer enters the codepay password
            confirmed = self.trades.buyer_confirms(number)
            await send_response(send, 200 if confirmed else 404, b"paid" if confirmed else b"no")
            return
        if path.startswith("/sim/h5/"):
            page = f'<form method="post" action="/sim/pay/{number}"><button>支付</button></form>'
            await send_response(send, 200, page.encode(), "text/html; charset=utf-8")
            return
        paid = await self.trades.buyer_pays(number)
        if paid and self.auto_notify:
            await self.notify(number)
        await send_response(send, 200 if paid else 404, b"paid" if paid else b"no such order")

    def _bill(self) -> bytes:
        rows = [
            (tid, no, state, Money(self.bill_amounts.get(tid, amount.minor), "CNY"), back)
            if state == "SUCCESS"
            else (tid, no, state, amount, back)
            for tid, no, state, amount, back in self.trades.bill_rows()
            if tid not in self.bill_omits
        ]
        day = self.channel.clock.now().astimezone(BEIJING).date().isoformat()
        return bill.write(rows, self.keys.mchid, self.keys.appid, day).encode("utf-8")

    def _stamp(self) -> int:
        return int(self.channel.clock.now().timestamp())

    def notification(self, number: str) -> tuple[dict[str, str], bytes] | None:
        """The signed, encrypted TRANSACTION.SUCCESS notification of a paid order."""
        charge = self.trades.paid(number)
        if charge is None:
            return None
        plain = json.dumps(self.trades.transaction(charge), ensure_ascii=False).encode()
        nonce = secrets.token_hex(6)
        now: datetime = self.channel.clock.now().astimezone(BEIJING)
        document = {
            "id": f"sim-{charge.reference}",
            "create_time": now.isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": signing.encrypt(self.keys.api_v3_key, nonce, "transaction", plain),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        }
        body = json.dumps(document, ensure_ascii=False)
        signed = signing.signed_by(
            self.keys.wechatpay_private, self.keys.public_key_id, body, self._stamp()
        )
        headers = {**signed.headers(), "Wechatpay-Signature-Type": signing.SCHEMA}
        return headers | {"Content-Type": "application/json"}, body.encode()

    async def notify(self, number: str) -> httpx.Response | None:
        """Post the paid order's notification to its notify_url, once."""
        url = self.trades.notify_urls.get(number, self.notify_url)
        made = self.notification(number)
        if url is None or made is None:
            return None
        headers, body = made
        return await deliver(url, body, headers, self.notify_transport)
