"""The simulator's Alipay gateway face: Alipay's open platform wire protocol in front of a
simulated channel, so the shipped Alipay connector runs against it unchanged.

It takes what Alipay's gateway takes (a form-encoded POST, or a GET for the cashier
pages, with `app_id`, `method`, `charset`, `sign_type`, `timestamp`, `version`,
`biz_content`, `sign`, …), verifies the caller's RSA2 signature with the app's public
key, and answers as Alipay does: `{"<method>_response": {…}, "sign": "…"}`, signed with
its own key over the node's exact JSON text; a call it cannot authenticate gets an
unsigned `error_response` (`isv.invalid-app-id`, `isv.invalid-signature`). It sends
signed asynchronous notifications to the trade's `notify_url`, and serves the daily bill
zip behind `alipay.data.dataservice.bill.downloadurl.query`.

The simulated channel's faults reach the wire: a hung call holds the request until the
caller gives up (`release` ends every hang, for a clean shutdown), a lost response
starts the answer and drops the connection, an outage answers 503. Keys are made
locally (`GatewayKeys.generate`): nothing here talks to Alipay.

An ASGI app: `uvicorn.Server` on 127.0.0.1 in tests and demos, or `httpx.ASGITransport`
in-process (the lab).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from paymend.providers.alipay import bill, signing
from paymend.providers.alipay.client import BEIJING
from paymend.sim.alipay_trades import Trades, refused
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

PID = "2088000000000001"


@dataclass(frozen=True, slots=True)
class GatewayKeys:
    """The app's key pair (the connector signs with its private half) and Alipay's (the
    face signs with its private half; the connector verifies with the public one)."""

    app_id: str
    app_private: rsa.RSAPrivateKey
    alipay_private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, app_id: str = "2021000000000001") -> GatewayKeys:
        def new() -> rsa.RSAPrivateKey:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)

        return cls(app_id, new(), new())

    def credentials(self) -> dict[str, str]:
        """What a connector channel needs, by credential name (config/channels.py AlipayChannel)."""
        return {
            "app_private_key": signing.private_pem(self.app_private),
            "alipay_public_key": signing.public_pem(self.alipay_private.public_key()),
        }


@dataclass
class AlipayGateway(Releasable):
    """The face: an ASGI app over one simulated channel."""

    keys: GatewayKeys
    channel: FaceChannel
    # where its notifications go: None, the network; or a transport (paymend in-process)
    notify_transport: httpx.AsyncBaseTransport | None = None
    auto_notify: bool = False  # notify each paid trade as soon as it is paid
    bill_amounts: dict[str, str] = field(default_factory=dict)  # trade_no -> yuan: a mismatch
    bill_omits: set[str] = field(default_factory=set)  # trade_nos the bill leaves out
    failing_queries: bool = False  # trade.query answers 20000: only a notification can tell
    trades: Trades = field(init=False)
    released: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    calls: list[str] = field(init=False, default_factory=list)  # methods, in order
    _loop: asyncio.AbstractEventLoop | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.trades = Trades(self.channel)
        self.channel.clock = HangClock(self.channel.clock, self.channel.settings.hang_s, self)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = await self.request_body(scope, receive, send)
        if body is None:
            return
        path = scope["path"]
        if path.startswith("/bill/"):
            await send_response(send, 200, self._bill(), "application/zip")
            return
        if path.startswith("/sim/pay/"):  # the buyer pays a QR code or a page's trade
            paid = await self.trades.buyer_pays(path.removeprefix("/sim/pay/"))
            if paid and self.auto_notify:
                await self.notify(path.removeprefix("/sim/pay/"))
            await send_response(send, 200 if paid else 404, b"paid" if paid else b"no such trade")
            return
        query = scope.get("query_string", b"").decode("latin-1")
        params = dict(parse_qsl(query, keep_blank_values=True))
        params |= dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if scope["method"] == "GET":  # the cashier page of page.pay / wap.pay
            answer = self._cashier(params)
            await send_response(send, 200, answer.encode(), "text/html; charset=utf-8")
            return
        if await outage(send, self.channel.settings.outage):
            return
        text = await through_faults(send, self._gateway(params, base_url(scope)))
        if text is not None:
            await send_response(send, 200, text.encode(), "application/json; charset=utf-8")

    async def _gateway(self, params: dict[str, str], base: str) -> str:
        method = params.get("method", "")
        self.calls.append(method)
        refusal = self._authenticate(params)
        if refusal is not None:
            return json.dumps({"error_response": refusal}, ensure_ascii=False)
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except json.JSONDecodeError:
            biz = None
        if not isinstance(biz, dict):
            return self._signed(method, refused("40002", "isv.invalid-parameter", "biz_content"))
        if params.get("notify_url") and biz.get("out_trade_no"):
            self.trades.notify_urls[str(biz["out_trade_no"])] = params["notify_url"]
        node = await self._method(method, biz, base)
        if self.auto_notify and method == "alipay.trade.pay" and node.get("code") == "10000":
            asyncio.get_running_loop().create_task(self.notify(str(biz["out_trade_no"])))
        return self._signed(method, node)

    async def _method(self, method: str, biz: dict[str, Any], base: str) -> dict[str, Any]:
        t = self.trades
        match method:
            case "alipay.trade.pay":
                return await t.pay(biz)
            case "alipay.trade.precreate":
                return t.precreate(biz)
            case "alipay.trade.query":
                if self.failing_queries:
                    return refused("20000", "isp.unknow-error", "系统繁忙")
                return t.query(biz)
            case "alipay.trade.refund":
                return await t.refund(biz)
            case "alipay.trade.close":
                return t.close(biz)
            case "alipay.trade.cancel":
                return await t.cancel(biz)
            case "alipay.data.dataservice.bill.downloadurl.query":
                day = str(biz.get("bill_date", ""))
                return {
                    "code": "10000",
                    "msg": "Success",
                    "bill_download_url": f"{base}/bill/{day}.zip",
                }
        return refused("40002", "isv.invalid-method", f"unknown method {method}")

    def _authenticate(self, params: dict[str, str]) -> dict[str, Any] | None:
        """Why the gateway refuses the call before looking at it, if it does."""
        if params.get("app_id") != self.keys.app_id:
            return refused("40002", "isv.invalid-app-id", "无效的AppID参数")
        if params.get("sign_type") != signing.SIGN_TYPE or not params.get("sign"):
            return refused("40002", "isv.invalid-signature-type", "无效的签名类型")
        content = signing.sign_content(params)
        if not signing.verify(self.keys.app_private.public_key(), content, params["sign"]):
            return refused("40002", "isv.invalid-signature", "验签出错")
        return None

    def _signed(self, method: str, node: dict[str, Any]) -> str:
        raw = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        signature = signing.sign(self.keys.alipay_private, raw)
        name = method.replace(".", "_") + "_response"
        return f'{{"{name}":{raw},"sign":"{signature}"}}'

    def _cashier(self, params: dict[str, str]) -> str:
        refusal = self._authenticate(params)
        if refusal is not None:
            return f"<p>{refusal['sub_code']}</p>"
        biz = json.loads(params.get("biz_content") or "{}")
        if params.get("notify_url"):
            self.trades.notify_urls[str(biz.get("out_trade_no"))] = params["notify_url"]
        made = self.trades.precreate(biz)
        if made.get("code") != "10000":  # past its time_expire: no trade is made
            return f"<p>{made['sub_code']}: {made['sub_msg']}</p>"
        key = biz.get("out_trade_no")
        return f'<form method="post" action="/sim/pay/{key}"><button>Pay</button></form>'

    def _bill(self) -> bytes:
        rows = [
            (trade_no, key, kind, self.bill_amounts.get(trade_no, amount), received, no)
            if kind == "交易"
            else (trade_no, key, kind, amount, received, no)
            for trade_no, key, kind, amount, received, no in self.trades.bill_rows()
            if trade_no not in self.bill_omits
        ]
        day = self.channel.clock.now().astimezone(BEIJING).date().isoformat()
        return bill.write(rows, PID, day)

    def notification(self, key: str) -> bytes | None:
        """The signed form Alipay would post for a paid trade."""
        fields = self.trades.notification(key)
        if fields is None:
            return None
        now: datetime = self.channel.clock.now().astimezone(BEIJING)
        fields |= {
            "notify_time": now.strftime("%Y-%m-%d %H:%M:%S"),
            "app_id": self.keys.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": signing.SIGN_TYPE,
            "buyer_id": "2088102177846880",
        }
        content = signing.sign_content(fields, exclude=("sign", "sign_type"))
        fields["sign"] = signing.sign(self.keys.alipay_private, content)
        return urlencode(fields).encode()

    async def notify(self, key: str) -> httpx.Response | None:
        """Post the paid trade's signed notification to its notify_url, once."""
        url, form = self.trades.notify_urls.get(key), self.notification(key)
        if url is None or form is None:
            return None
        form_type = {"content-type": "application/x-www-form-urlencoded"}
        return await deliver(url, form, form_type, self.notify_transport)
