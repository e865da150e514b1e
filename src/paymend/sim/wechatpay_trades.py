"""What the WeChat Pay v3 face does with each API, over a simulated channel.

The simulated channel (providers/simulator.py) decides every charge, with its fault
injection: payment codes starting `sim_` force an outcome as its tokens do
(`sim_decline_insufficient_funds`, `sim_timeout_charged`, `sim_lost_response`,
`sim_error_system_error`), and its rates draw the rest. Its ledger is WeChat Pay's
truth: an order is paid when the ledger holds the charge under its `out_trade_no`,
whatever became of the answer. Here the simulator's codes become WeChat Pay's: the
HTTP statuses and `code`s of https://pay.weixin.qq.com/wiki/doc/apiv3/wechatpay/
wechatpay2_1.shtml and of each API's page (付款码支付's NOT_ENOUGH, USERPAYING, …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any

from paymend.domain.money import Money
from paymend.providers.base import ChargeRequest, ProviderOutcome, ProviderResult, RefundRequest
from paymend.providers.simulator import ChargeState, LedgerCharge
from paymend.sim.channel import FaceChannel

BEIJING = timezone(timedelta(hours=8))
Reply = tuple[int, dict[str, Any] | None]

# the simulator's decline codes as WeChat Pay's refusals of a payment code
DECLINES = {
    "INSUFFICIENT_FUNDS": (403, "NOT_ENOUGH", "用户账号余额不足"),
    "DO_NOT_HONOR": (403, "TRADE_ERROR", "交易错误"),
    "EXPIRED_CARD": (403, "AUTH_CODE_EXPIRE", "付款码已过期"),
    "INCORRECT_DETAILS": (400, "AUTH_CODE_INVALID", "付款码无效"),
    "SUSPECTED_FRAUD": (403, "TRADE_ERROR", "交易错误"),
    "LOST_CARD": (403, "USER_ACCOUNT_ABNORMAL", "用户账户异常"),
    "LIMIT_EXCEEDED": (403, "RULE_LIMIT", "交易金额或次数超出限制"),
    "BANK_RESTRICTION": (403, "ACCOUNT_ERROR", "账号异常"),
}
# its error codes as WeChat Pay's
ERRORS = {
    "SYSTEM_ERROR": (500, "SYSTEM_ERROR", "系统异常，请使用相同参数稍后重新调用"),
    "RATE_LIMITED": (429, "FREQUENCY_LIMITED", "频率超限"),
    "TOKEN_EXPIRED": (401, "SIGN_ERROR", "签名错误"),
    "INVALID_PARAMETER": (400, "PARAM_ERROR", "参数错误"),
}


def error(status: int, code: str, message: str) -> Reply:
    return status, {"code": code, "message": message}


@dataclass(slots=True)
class Order:
    """An order created for a QR code, a JSAPI page or an H5 page, not paid yet."""

    amount: Money
    kind: str
    closed: bool = False


@dataclass(slots=True)
class Trades:
    """WeChat Pay's orders for one merchant: the simulated channel's ledger, the orders
    waiting for their buyer, and the notify_url each order was created with."""

    channel: FaceChannel
    mchid: str
    appid: str
    waiting: dict[str, Order] = field(default_factory=dict)
    notify_urls: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # out_trade_no -> trade_type
    reversed: set[str] = field(default_factory=set)  # codepay orders reversed (撤销)

    async def codepay(self, body: dict[str, Any]) -> Reply:
        """付款码支付. May raise ProviderConnectionError: the call hangs or its answer
        is lost (the face drops the connection), charged or not."""
        number, amount = str(body.get("out_trade_no", "")), _amount(body)
        auth_code = (body.get("payer") or {}).get("auth_code")
        if not number or amount is None or not auth_code:
            return error(400, "PARAM_ERROR", "out_trade_no, amount.total, payer.auth_code")
        self.kinds[number] = "MICROPAY"
        result = await self.channel.authorize(
            ChargeRequest(number, number, amount, "wechat_pay", token=str(auth_code))
        )
        if result.outcome is ProviderOutcome.SUCCEEDED:
            charge = self.channel.ledger.get(number)
            assert charge is not None
            return 200, self.transaction(charge)
        if result.outcome is ProviderOutcome.REQUIRES_ACTION:  # the buyer enters a password
            return error(202, "USERPAYING", "用户支付中，需要输入密码")
        return _refusal(result)

    def order(self, kind: str, body: dict[str, Any], base: str) -> Reply:
        """Native, JSAPI or H5 下单: an order waiting for its buyer."""
        number, amount = str(body.get("out_trade_no", "")), _amount(body)
        if not number or amount is None:
            return error(400, "PARAM_ERROR", "out_trade_no, amount.total")
        if kind == "jsapi" and not (body.get("payer") or {}).get("openid"):
            return error(400, "PARAM_ERROR", "payer.openid")
        charge = self.channel.ledger.get(number)
        if charge is not None and charge.state is ChargeState.CHARGED:
            return error(400, "ORDER_PAID", "订单已支付")
        self.waiting.setdefault(number, Order(amount, kind.upper()))
        self.kinds[number] = "MWEB" if kind == "h5" else kind.upper()
        if kind == "native":
            return 200, {"code_url": f"weixin://wxpay/bizpayurl?pr=sim_{number}"}
        if kind == "h5":
            return 200, {"h5_url": f"{base}/sim/h5/{number}"}
        return 200, {"prepay_id": f"wx_sim_{number}"}

    async def buyer_pays(self, number: str) -> bool:
        """The buyer scanned the QR code (or paid on the page): True if now paid."""
        order = self.waiting.get(number)
        if order is None or order.closed:
            return False
        request = ChargeRequest(number, number, order.amount, "wechat_pay")
        result = await self.channel.authorize(request)
        if result.outcome is ProviderOutcome.SUCCEEDED:
            del self.waiting[number]
            return True
        return False

    def query(self, number: str) -> Reply:
        """商户订单号查询订单."""
        charge = self.channel.ledger.get(number)
        lag = self.channel.settings.query_lag_s
        if charge is not None and self.channel.clock.monotonic() - charge.booked_at < lag:
            charge = None  # WeChat Pay's query does not see an order this young yet
        if charge is not None and number in self.reversed:
            return 200, self._unpaid(number, charge.amount, "REVOKED")
        if charge is not None and charge.state is ChargeState.CHARGED:
            return 200, self.transaction(charge)
        if number in self.waiting:
            order = self.waiting[number]
            state = "CLOSED" if order.closed else "NOTPAY"
            return 200, self._unpaid(number, order.amount, state)
        if charge is not None and charge.state is ChargeState.AWAITING_AUTHENTICATION:
            return 200, self._unpaid(number, charge.amount, "USERPAYING")
        if charge is not None:  # declined: the order ended unpaid
            return 200, self._unpaid(number, charge.amount, "PAYERROR")
        return error(404, "ORDER_NOT_EXIST", "订单不存在")

    def by_id(self, transaction_id: str) -> Reply:
        """微信支付订单号查询订单."""
        charge = self.channel.ledger.by_reference(transaction_id)
        if charge is None or charge.state is not ChargeState.CHARGED:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        return 200, self.transaction(charge)

    def close(self, number: str) -> Reply:
        charge = self.channel.ledger.get(number)
        if charge is not None and charge.state is ChargeState.CHARGED:
            return error(400, "ORDER_PAID", "订单已支付")
        if number not in self.waiting:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        self.waiting[number].closed = True
        return 204, None

    async def reverse(self, number: str, body: dict[str, Any]) -> Reply:
        """撤销 a payment-code order, `POST /v3/pay/transactions/out-trade-no/{out_trade_no}
        /reverse` with `appid` and `mchid` (https://pay.weixin.qq.com/docs/merchant/apis/
        code-payment-v3/direct/reverse.html): "如果此订单用户支付失败，微信支付系统会将此订单
        关闭；如果用户支付成功，微信支付系统会将此订单资金退还给用户". Answered 200 with
        the order's numbers; the query says REVOKED from then on, and a buyer who enters
        the password now pays nothing."""
        if body.get("mchid") != self.mchid or body.get("appid") != self.appid:
            return error(400, "PARAM_ERROR", "appid, mchid")
        charge = self.channel.ledger.get(number)
        if charge is None:
            return error(404, "ORDER_NOT_EXIST", "订单不存在")
        if number not in self.reversed:
            if charge.state is ChargeState.CHARGED and charge.refunded < charge.amount.minor:
                left = Money(charge.amount.minor - charge.refunded, "CNY")
                back = RefundRequest(f"reverse_{number}", charge.reference, left)
                await self.channel.refund(back)
            elif charge.state is ChargeState.AWAITING_AUTHENTICATION:
                charge.state = ChargeState.DECLINED
                self.channel.ledger.put(charge)
            self.reversed.add(number)
        return 200, {"appid": self.appid, "mchid": self.mchid, "out_trade_no": number}

    def buyer_confirms(self, number: str) -> bool:
        """The buyer enters the password of a codepay order still USERPAYING: True if it
        is now paid (never once it was reversed)."""
        charge = self.channel.ledger.get(number)
        if charge is None or charge.state is not ChargeState.AWAITING_AUTHENTICATION:
            return False
        charge.state = ChargeState.CHARGED
        paid = ProviderResult(ProviderOutcome.SUCCEEDED, "SUCCESS", "paid", charge.reference)
        charge.result = paid
        self.channel.ledger.put(charge)
        return True

    async def refund(self, body: dict[str, Any]) -> Reply:
        """申请退款; `out_refund_no` makes it idempotent; `amount.total` must be the
        order's."""
        charge = self._charge(body)
        amount = body.get("amount") or {}
        refund, request_no = amount.get("refund"), str(body.get("out_refund_no") or "")
        if charge is None or charge.state is not ChargeState.CHARGED:
            return error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if not isinstance(refund, int) or refund <= 0 or not request_no:
            return error(400, "PARAM_ERROR", "amount.refund, out_refund_no")
        if amount.get("total") != charge.amount.minor:
            return error(400, "PARAM_ERROR", "amount.total 与原订单金额不一致")
        back = Money(refund, "CNY")
        result = await self.channel.refund(RefundRequest(request_no, charge.reference, back))
        if result.outcome is not ProviderOutcome.SUCCEEDED:
            return error(403, "NOT_ENOUGH", "可退金额不足")
        return 200, {
            "refund_id": result.reference,
            "out_refund_no": request_no,
            "transaction_id": charge.reference,
            "out_trade_no": charge.idempotency_key,
            "channel": "ORIGINAL",
            "status": "SUCCESS",
            "create_time": self._now(),
            "amount": {"refund": refund, "total": charge.amount.minor, "currency": "CNY"},
        }

    def transaction(self, charge: LedgerCharge) -> dict[str, Any]:
        """The transaction object of a paid order, as a query or a notification gives it."""
        refunded = charge.refunded > 0
        return {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": charge.idempotency_key,
            "transaction_id": charge.reference,
            "trade_type": self.kinds.get(charge.idempotency_key, "NATIVE"),
            "trade_state": "REFUND" if refunded else "SUCCESS",
            "trade_state_desc": "转入退款" if refunded else "支付成功",
            "bank_type": "OTHERS",
            "success_time": self._now(),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {
                "total": charge.amount.minor,
                "payer_total": charge.amount.minor,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }

    def _unpaid(self, number: str, amount: Money, state: str) -> dict[str, Any]:
        return {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": number,
            "trade_state": state,
            "trade_state_desc": _DESCRIPTIONS.get(state, "支付失败"),
            "amount": {"total": amount.minor, "currency": "CNY"},
        }

    def paid(self, number: str) -> LedgerCharge | None:
        charge = self.channel.ledger.get(number)
        return charge if charge is not None and charge.state is ChargeState.CHARGED else None

    def bill_rows(self) -> list[tuple[str, str, str, Money, int]]:
        """The trade bill's rows: each paid order, and its refunds (as one row)."""
        rows = []
        for c in self.channel.ledger.all_charges():
            if c.state is not ChargeState.CHARGED:
                continue
            rows.append((c.reference, c.idempotency_key, "SUCCESS", c.amount, 0))
            if c.refunded:
                rows.append((c.reference, c.idempotency_key, "REFUND", c.amount, c.refunded))
        return rows

    def _charge(self, body: dict[str, Any]) -> LedgerCharge | None:
        ledger = self.channel.ledger
        if body.get("transaction_id"):
            return ledger.by_reference(str(body["transaction_id"]))
        if body.get("out_trade_no"):
            return ledger.get(str(body["out_trade_no"]))
        return None

    def _now(self) -> str:
        return self.channel.clock.now().astimezone(BEIJING).isoformat(timespec="seconds")


_DESCRIPTIONS = {
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "USERPAYING": "用户支付中",
    "REVOKED": "已撤销",
}


def _amount(body: dict[str, Any]) -> Money | None:
    amount = body.get("amount") or {}
    value = amount.get("total") if isinstance(amount, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    if amount.get("currency", "CNY") != "CNY":
        return None
    return Money(value, "CNY")


def _refusal(result: ProviderResult) -> Reply:
    code = result.raw_code or "SYSTEM_ERROR"
    if result.outcome is ProviderOutcome.DECLINED:
        return error(*DECLINES.get(code, (403, "TRADE_ERROR", "交易错误")))
    return error(*ERRORS.get(code, ERRORS["SYSTEM_ERROR"]))
