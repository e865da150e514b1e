"""The WeChat Pay channel: paymend's Provider over WeChat Pay API v3 (a direct merchant).

- `authorize`: with a payment code (the payment's token: the code the buyer's WeChat
  shows) 付款码支付, `POST /v3/pay/transactions/codepay`, answered at once; without
  one, the channel's `flow` (or the payment's metadata `wechatpay_flow`): Native
  (`/v3/pay/transactions/native` -> `code_url`, a QR code to scan), JSAPI
  (`/v3/pay/transactions/jsapi` -> `prepay_id`, with the payer's `openid` from the
  metadata, and the signed parameters the page passes to `WeixinJSBridge`) or H5
  (`/v3/pay/transactions/h5` -> `h5_url`, a redirect); all three answer
  `requires_action` and settle when the buyer pays (the notification, or a query).
- `query`: `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=`; a payment-code
  order still without a clear result `reverse_after_s` after it was sent is reversed
  (撤销) there, as WeChat Pay requires (`_settle_codepay`);
  `close_unpaid` (the engine's cancel);
  `refund`: `POST /v3/refund/domestic/refunds` with the refund's key as
  `out_refund_no`; `settlements`: the trade bills; `parse_notification`; `check`: a
  signed query of an order that cannot exist.

`out_trade_no` is always the attempt's id (mapping.out_trade_no), so a repeated call
finds the order it created. An answer that cannot be read or is not signed by WeChat
Pay is an unknown outcome, never a failure: the engine queries.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import httpx

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.providers.answers import AnswerNotTrusted
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
from paymend.providers.wechatpay import bill, mapping, notifications, signing
from paymend.providers.wechatpay.client import WechatpayClient

BEIJING = timezone(timedelta(hours=8))
TRANSACTIONS = "/v3/pay/transactions"
CHECK_ORDER = "paymend_channels_check_0"  # never an attempt's id (those start att_)
BILL_NOT_READY = frozenset({"NO_STATEMENT_EXIST", "STATEMENT_CREATING"})
FLOWS = ("native", "jsapi", "h5")
JSAPI_SDK = "wechat_jsapi"  # next_action `sdk`: WeixinJSBridge getBrandWCPayRequest
# a payment-code order without a clear result this long after it was sent is reversed:
# WeChat Pay asks for the reverse only after the query gave no clear result, and not
# within 15 s of paying (https://pay.weixin.qq.com/wiki/doc/api/wxpay/ch/pay/QuickPay/
# chapter3_4.shtml, 撤销订单: "提交支付交易后调用【查询订单API】,没有明确的支付结果再调用
# 【撤销订单API】", "建议支付后至少15s后再调用撤销订单接口"); and after 30 s of a buyer
# not paying, stop querying and reverse ("如果用户累计30秒用户都未支付,你需要停止查询并调用
# 撤销订单API", WeChat Pay's answer in its developer community:
# https://developers.weixin.qq.com/community/pay/doc/00086ec5f94b606e5b6d8c54a51c00)
REVERSE_AFTER_S = 30.0
MIN_REVERSE_AFTER_S = 15.0
REVOKED = "REVOKED"


class WechatpayProvider:
    """One WeChat Pay merchant (`mchid`, with its `appid`) as a paymend channel."""

    code_map = "wechatpay"

    def __init__(
        self,
        name: str,
        client: WechatpayClient,
        capabilities: Capabilities,
        *,
        appid: str,
        api_v3_key: str,
        notify_url: str | None = None,
        flow: str = "native",
        description: str = "paymend order",
        store_id: str = "paymend",
        bill_days: int = 2,
        reverse_after_s: float = REVERSE_AFTER_S,
    ) -> None:
        self.name = name
        self.client = client
        self.capabilities = capabilities
        self.appid = appid
        self._api_v3_key = api_v3_key
        self.notify_url = notify_url
        self.flow = flow
        self.description = description
        self.store_id = store_id
        self.bill_days = bill_days
        # the Beijing days the last settlements() read bills of (SettlementPeriod)
        self.settled_between: tuple[datetime, datetime] | None = None
        self.reverse_after_s = reverse_after_s
        # payment-code orders not known paid or refused yet -> when this process first
        # sent (or, after a restart, first found USERPAYING) them, on the monotonic clock
        self._codepay_since: dict[str, float] = {}

    def _order(self, request: ChargeRequest) -> dict[str, Any]:
        order: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.client.mchid,
            "description": self.description,
            "out_trade_no": mapping.out_trade_no(request.idempotency_key),
            "amount": mapping.total(request.amount),
        }
        if self.notify_url:
            order["notify_url"] = self.notify_url
        return order

    # -- the Provider protocol ---------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        order = self._order(request)
        flow = request.metadata.get("wechatpay_flow", self.flow)
        try:
            if request.token:  # the payment code the buyer's WeChat shows
                order.pop("notify_url", None)  # codepay answers at once; it takes none
                order["payer"] = {"auth_code": request.token}
                order["scene_info"] = {"store_info": {"out_id": self.store_id}}
                number = str(order["out_trade_no"])
                self._codepay_since.setdefault(number, self.client.clock.monotonic())
                result = mapping.codepay(
                    await self.client.call("POST", f"{TRANSACTIONS}/codepay", order)
                )
                if result.outcome in (ProviderOutcome.SUCCEEDED, ProviderOutcome.DECLINED):
                    self._codepay_since.pop(number, None)
                return result
            if flow == "jsapi":
                return await self._jsapi(order, request)
            if flow == "h5":
                ip = request.metadata.get("payer_client_ip")
                if not ip:
                    return _missing("H5 orders need the payer's IP (metadata payer_client_ip)")
                order["scene_info"] = {"payer_client_ip": ip, "h5_info": {"type": "Wap"}}
                answer = await self.client.call("POST", f"{TRANSACTIONS}/h5", order)
                url = str(answer.body.get("h5_url", "")) if answer.ok else ""
                return mapping.waiting(answer, {"type": "redirect", "url": url})
            answer = await self.client.call("POST", f"{TRANSACTIONS}/native", order)
            url = str(answer.body.get("code_url", "")) if answer.ok else ""
            return mapping.waiting(answer, {"type": "scan_qr_code", "url": url})
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)

    async def _jsapi(self, order: dict[str, Any], request: ChargeRequest) -> ProviderResult:
        """A JSAPI order, and the parameters the page hands `WeixinJSBridge.invoke(
        'getBrandWCPayRequest', …)`: `appId`, `timeStamp`, `nonceStr`, `package`
        (`prepay_id=…`), `signType` `RSA` and `paySign`, SHA256withRSA with the merchant
        key over `appId\ntimeStamp\nnonceStr\npackage\n`
        (https://pay.weixin.qq.com/docs/merchant/apis/jsapi-payment/jsapi-transfer-payment.html).
        They are the payment's `next_action` of kind `sdk`: nothing secret is in them
        (the signature is over public values, for this one order)."""
        openid = request.metadata.get("openid") or request.metadata.get("wechatpay_openid")
        if not openid:
            return _missing("JSAPI orders need the payer's openid (metadata openid)")
        order["payer"] = {"openid": openid}
        answer = await self.client.call("POST", f"{TRANSACTIONS}/jsapi", order)
        if not answer.ok:
            return mapping.waiting(answer, {"type": "sdk", "sdk": JSAPI_SDK})
        stamp, nonce = str(int(self.client.clock.now().timestamp())), signing.nonce()
        package = f"prepay_id={answer.body.get('prepay_id', '')}"
        pay_sign = self.client.sign(f"{self.appid}\n{stamp}\n{nonce}\n{package}\n")
        parameters = {
            "appId": self.appid,
            "timeStamp": stamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }
        return mapping.waiting(
            answer, {"type": "sdk", "sdk": JSAPI_SDK, "parameters": json.dumps(parameters)}
        )

    async def query(self, request: QueryRequest) -> ProviderResult:
        number = mapping.out_trade_no(request.idempotency_key)
        try:
            result = mapping.query(await self._query(number))
        except AnswerNotTrusted as exc:
            result = mapping.untrusted(self.name, exc)
        return await self._settle_codepay(number, result, request.sent_at)

    async def _settle_codepay(
        self, number: str, queried: ProviderResult, sent_at: datetime | None = None
    ) -> ProviderResult:
        """A payment-code order whose query gave no clear result (USERPAYING, no such
        order yet, an error) `reverse_after_s` after it was sent is reversed: 撤销,
        `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/reverse` with `appid` and
        `mchid`, answered 200 (https://pay.weixin.qq.com/docs/merchant/apis/
        code-payment-v3/direct/reverse.html). WeChat Pay then closes it if unpaid, or
        pays the buyer back if paid meanwhile: either way nothing stays charged, so the
        attempt ends DECLINED (`REVOKED`, the query's trade_state from then on). A
        reverse refused or unanswered leaves the query's answer: the next query tries
        again. The time counts from when the order was sent (`sent_at`, the attempt's
        creation, so any process's query agrees); without it, from when this process
        sent it or first found it USERPAYING."""
        if queried.outcome in (ProviderOutcome.SUCCEEDED, ProviderOutcome.DECLINED):
            self._codepay_since.pop(number, None)
            return queried
        now = self.client.clock.monotonic()
        codepay = number in self._codepay_since or queried.raw_code == mapping.USER_PAYING
        if queried.raw_code == mapping.USER_PAYING:
            self._codepay_since.setdefault(number, now)
        since = self._codepay_since.get(number)
        if codepay and sent_at is not None:
            elapsed: float | None = (self.client.clock.now() - sent_at).total_seconds()
        else:
            elapsed = None if since is None else now - since
        if elapsed is None or elapsed < self.reverse_after_s:
            return queried
        try:
            answer = await self.client.call(
                "POST",
                f"{TRANSACTIONS}/out-trade-no/{number}/reverse",
                {"appid": self.appid, "mchid": self.client.mchid},
            )
        except (AnswerNotTrusted, ProviderConnectionError):
            return queried  # the reverse's own outcome is unknown: asked again next time
        if answer.ok:
            self._codepay_since.pop(number, None)
            why = f"reversed (撤销) after {elapsed:.0f}s without a clear result"
            return ProviderResult(ProviderOutcome.DECLINED, REVOKED, f"{why}; {answer.raw_message}")
        if answer.raw_code == mapping.NOT_EXIST or answer.status == 404:
            self._codepay_since.pop(number, None)
            return ProviderResult(ProviderOutcome.NOT_FOUND, mapping.NOT_EXIST, answer.raw_message)
        return queried

    async def _query(self, number: str) -> Any:
        path = f"{TRANSACTIONS}/out-trade-no/{number}"
        return await self.client.call("GET", path, query={"mchid": self.client.mchid})

    async def refund(self, request: RefundRequest) -> ProviderResult:
        """`amount.total` must be the order's own total, which the request does not
        carry: it is read from the transaction first (by its `transaction_id`)."""
        try:
            paid = await self.client.call(
                "GET",
                f"{TRANSACTIONS}/id/{request.charge_reference}",
                query={"mchid": self.client.mchid},
            )
            if not paid.ok:
                return mapping.query(paid)
            amount = paid.body.get("amount")
            order_total = mapping.fen(amount.get("total") if isinstance(amount, dict) else None)
            body: dict[str, Any] = {
                "transaction_id": request.charge_reference,
                "out_refund_no": mapping.out_refund_no(request.idempotency_key),
                "amount": {
                    "refund": request.amount.minor,
                    **mapping.total(order_total),
                },
            }
            if self.notify_url:
                body["notify_url"] = self.notify_url
            answer = await self.client.call("POST", "/v3/refund/domestic/refunds", body)
            return mapping.refund(answer)
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)

    async def close_unpaid(self, request: QueryRequest) -> ProviderResult:
        """关闭订单, `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` with the
        `mchid`, answered 204 (https://pay.weixin.qq.com/docs/merchant/apis/native-payment/
        close-order.html): an unpaid Native, JSAPI or H5 order can no longer be paid.
        Refused (the buyer paid meanwhile, no such order, or another reason), the order
        is queried, so a paid order answers SUCCEEDED and its charge is kept, one the
        buyer is still confirming (USERPAYING) stays unknown, and none is NOT_FOUND."""
        number = mapping.out_trade_no(request.idempotency_key)
        try:
            answer = await self.client.call(
                "POST", f"{TRANSACTIONS}/out-trade-no/{number}/close", {"mchid": self.client.mchid}
            )
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)
        if answer.ok:
            return ProviderResult(ProviderOutcome.DECLINED, "CLOSED", answer.raw_message)
        # refused, even as ORDER_NOT_EXIST (a payment-code order is not closed this way):
        # the query says what the order is
        return await self.query(request)

    async def aclose(self) -> None:
        """Close the HTTP connections of the running loop (the runtime's stop)."""
        await self.client.aclose()

    async def settlements(self) -> list[SettlementLine]:
        """The transactions of the last `bill_days` trade bills (up to today; a day whose
        bill WeChat Pay has not made yet is skipped)."""
        today = self.client.clock.now().astimezone(BEIJING).date()
        lines: dict[str, SettlementLine] = {}
        read: list[date] = []
        for back in range(self.bill_days - 1, -1, -1):
            day = today - timedelta(days=back)
            query = {"bill_date": day.isoformat(), "bill_type": "ALL"}
            answer = await self.client.call("GET", "/v3/bill/tradebill", query=query)
            if not answer.ok:
                if answer.raw_code in BILL_NOT_READY:
                    continue
                raise ProviderConnectionError(answer.raw_code, answer.raw_message, sent=False)
            content = await self.client.download(str(answer.body["download_url"]))
            if not bill.sha1_matches(content, str(answer.body.get("hash_value", ""))):
                raise ProviderConnectionError(
                    "BILL_HASH_MISMATCH", "the trade bill's SHA1 does not match", sent=False
                )
            read.append(day)
            for line in bill.parse(content.decode("utf-8")):
                key = mapping.idempotency_key(line.idempotency_key)
                lines[line.reference] = SettlementLine(
                    line.reference, key, line.payment_id, line.amount, line.refunded
                )
        self.settled_between = _days(read[0], read[-1]) if read else _days(today, today, 0)
        return list(lines.values())

    def parse_notification(self, headers: Any, body: bytes) -> ProviderNotification:
        return notifications.read(
            headers,
            body,
            mchid=self.client.mchid,
            api_v3_key=self._api_v3_key,
            public_key=self.client.public_key,
            public_key_id=self.client.public_key_id,
            now=self.client.clock.now().timestamp(),
        )

    async def check(self) -> CheckResult:
        """Credentials and reachability: a signed query for an order that cannot exist.
        Only WeChat Pay, knowing our merchant and key, answers ORDER_NOT_EXIST (404),
        signed with the public key we verify with."""
        try:
            answer = await self._query(CHECK_ORDER)
        except AnswerNotTrusted as exc:
            return CheckResult(False, f"{exc.raw_code}: {exc}")
        except ProviderConnectionError as exc:
            return CheckResult(False, f"{exc.raw_code}: {exc.raw_message}")
        if answer.raw_code == mapping.NOT_EXIST:
            return CheckResult(
                True, f"{self.client.base_url}: signed query answered {mapping.NOT_EXIST}"
            )
        return CheckResult(False, answer.raw_message)


def _missing(why: str) -> ProviderResult:
    """A payment this flow cannot send: refused here, nothing called (invalid_request)."""
    return ProviderResult(ProviderOutcome.ERROR, "PARAM_ERROR", why)


def _days(first: date, last: date, count: int = 1) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in Beijing time; empty with count 0."""
    start = datetime.combine(first, time(), BEIJING)
    end = datetime.combine(last, time(), BEIJING) + timedelta(days=count)
    return start, end


def build(spec: Any, clock: Clock) -> WechatpayProvider:
    """The registry's builder (providers/registry.py) for `type: wechatpay`."""
    options = spec.options
    client = WechatpayClient(
        base_url=spec.base_url,
        mchid=str(options["mchid"]),
        serial_no=str(options["mch_serial_no"]),
        private_key=signing.load_private_key(spec.credentials["mch_private_key"]),
        public_key=signing.load_public_key(spec.credentials["wechatpay_public_key"]),
        public_key_id=str(options["wechatpay_public_key_id"]),
        clock=clock,
        timeout_s=spec.timeout_s,
        transport=spec.transport if isinstance(spec.transport, httpx.AsyncBaseTransport) else None,
    )
    return WechatpayProvider(
        spec.name,
        client,
        spec.capabilities,
        appid=str(options["appid"]),
        api_v3_key=spec.credentials["api_v3_key"],
        notify_url=options.get("notify_url"),
        flow=str(options.get("flow", "native")),
        description=str(options.get("description", "paymend order")),
        store_id=str(options.get("store_id", "paymend")),
        bill_days=int(options.get("bill_days", 2)),
        reverse_after_s=max(
            MIN_REVERSE_AFTER_S, float(options.get("reverse_after_s", REVERSE_AFTER_S))
        ),
    )
