"""What the Alipay gateway face does with each method, over a simulated channel.

The simulated channel (providers/simulator.py) decides every charge, with its fault
injection: payment codes starting `sim_` force an outcome as its tokens do
(`sim_decline_insufficient_funds`, `sim_timeout_charged`, `sim_lost_response`,
`sim_error_system_error`), and its rates draw the rest. Its ledger is Alipay's truth:
a trade is paid when the ledger holds the charge under the trade's `out_trade_no`,
whatever became of the answer. Here the simulator's codes become Alipay's: the
`code`/`sub_code` pairs of https://opendocs.alipay.com/common/02km9f and the ACQ codes
of each method's page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paymend.domain.errors import InvalidInput
from paymend.domain.money import Money
from paymend.providers.base import (
    ChargeRequest,
    ProviderOutcome,
    ProviderResult,
    RefundRequest,
)
from paymend.providers.simulator import ChargeState
from paymend.sim.channel import FaceChannel

# the simulator's decline codes as Alipay's business refusals (code 40004)
DECLINES = {
    "INSUFFICIENT_FUNDS": "ACQ.BUYER_BALANCE_NOT_ENOUGH",
    "DO_NOT_HONOR": "ACQ.PAYMENT_FAIL",
    "EXPIRED_CARD": "ACQ.PAYMENT_AUTH_CODE_INVALID",
    "INCORRECT_DETAILS": "ACQ.PAYMENT_AUTH_CODE_INVALID",
    "SUSPECTED_FRAUD": "ACQ.PAYMENT_REQUEST_HAS_RISK",
    "LOST_CARD": "ACQ.BUYER_ENABLE_STATUS_FORBID",
    "LIMIT_EXCEEDED": "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR",
    "BANK_RESTRICTION": "ACQ.BEYOND_PAY_RESTRICTION",
}
# its error codes as Alipay's (code, sub_code)
ERRORS = {
    "SYSTEM_ERROR": ("20000", "isp.unknow-error"),
    "RATE_LIMITED": ("40004", "ACQ.SYSTEM_ERROR"),
    "TOKEN_EXPIRED": ("20001", "aop.invalid-app-auth-token"),
    "INVALID_PARAMETER": ("40002", "isv.invalid-parameter"),
}


def ok(**fields: Any) -> dict[str, Any]:
    return {"code": "10000", "msg": "Success", **fields}


def refused(code: str, sub_code: str, sub_msg: str = "") -> dict[str, Any]:
    msg = {
        "20000": "Service Currently Unavailable",
        "20001": "Insufficient Token Permissions",
        "40002": "Invalid Arguments",
        "40004": "Business Failed",
    }.get(code, "Error")
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg or sub_code}


@dataclass(slots=True)
class Waiting:
    """A trade created for a QR code or a cashier page, not paid yet; past `expires`
    (the request's `time_expire`) Alipay closes it."""

    amount: Money
    closed: bool = False
    expires: datetime | None = None


@dataclass(slots=True)
class Trades:
    """Alipay's trades for one app: the simulated channel's ledger, the trades waiting
    for their buyer, and the notify_url each trade was created with."""

    channel: FaceChannel
    waiting: dict[str, Waiting] = field(default_factory=dict)
    notify_urls: dict[str, str] = field(default_factory=dict)

    async def pay(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.pay. May raise ProviderConnectionError: the call hangs or its
        answer is lost (the gateway face drops the connection), charged or not."""
        key, amount = str(biz.get("out_trade_no", "")), _amount(biz)
        if not key or amount is None or not biz.get("auth_code"):
            return refused(
                "40002", "isv.invalid-parameter", "out_trade_no, total_amount, auth_code"
            )
        result = await self.channel.authorize(
            ChargeRequest(key, key, amount, "alipay", token=str(biz["auth_code"]))
        )
        if result.outcome is ProviderOutcome.SUCCEEDED:
            return ok(**_trade(key, result.reference, amount), gmt_payment=self._now())
        if result.outcome is ProviderOutcome.REQUIRES_ACTION:  # the buyer confirms
            return refused("10003", "ACQ.USER_PAYING") | {"msg": "order success pay inprocess"}
        return _refusal(result)

    def precreate(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.precreate: a trade waiting for the buyer to scan its QR code."""
        key, amount = str(biz.get("out_trade_no", "")), _amount(biz)
        if not key or amount is None:
            return refused("40002", "isv.invalid-parameter", "out_trade_no, total_amount")
        charge = self.channel.ledger.get(key)
        if charge is not None and charge.state is ChargeState.CHARGED:
            return refused("40004", "ACQ.TRADE_HAS_SUCCESS")
        expires = self.expires(biz)
        if expires is not None and self._now_at() >= expires:
            return refused("40004", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        self.waiting.setdefault(key, Waiting(amount, expires=expires))
        return ok(out_trade_no=key, qr_code=f"https://qr.alipay.com/sim_{key}")

    def expires(self, biz: dict[str, Any]) -> datetime | None:
        """The request's `time_expire` (yyyy-MM-dd HH:mm:ss, Beijing time), if any."""
        from paymend.providers.alipay.mapping import read_beijing_time

        text = biz.get("time_expire")
        return read_beijing_time(str(text)) if text else None

    def _expire(self, key: str) -> None:
        """Close the waiting trade `key` if its `time_expire` passed (逾期将关闭交易)."""
        trade = self.waiting.get(key)
        if trade is not None and trade.expires is not None and self._now_at() >= trade.expires:
            trade.closed = True

    async def buyer_pays(self, key: str) -> bool:
        """The buyer scanned the QR code (or paid on the page) and paid: True if the
        trade is now paid."""
        self._expire(key)
        trade = self.waiting.get(key)
        if trade is None or trade.closed:
            return False
        result = await self.channel.authorize(ChargeRequest(key, key, trade.amount, "alipay"))
        if result.outcome is ProviderOutcome.SUCCEEDED:
            del self.waiting[key]
            return True
        return False

    def query(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.query by out_trade_no (or trade_no)."""
        charge = self._charge(biz)
        lag = self.channel.settings.query_lag_s
        if charge is not None and self.channel.clock.monotonic() - charge.booked_at < lag:
            charge = None  # Alipay's query does not see a trade this young yet
        if charge is not None and charge.state is ChargeState.CHARGED:
            refunded = charge.refunded >= charge.amount.minor
            return ok(
                **_trade(charge.idempotency_key, charge.reference, charge.amount),
                trade_status="TRADE_CLOSED" if refunded else "TRADE_SUCCESS",
            )
        key = str(biz.get("out_trade_no", ""))
        if charge is not None and charge.state is ChargeState.AWAITING_AUTHENTICATION:
            # a payment code the buyer still confirms on the phone (10003 USER_PAYING)
            return ok(**_trade(key, charge.reference, charge.amount), trade_status="WAIT_BUYER_PAY")
        self._expire(key)
        if key in self.waiting:
            status = "TRADE_CLOSED" if self.waiting[key].closed else "WAIT_BUYER_PAY"
            return ok(out_trade_no=key, trade_status=status, total_amount=_yuan(self.waiting[key]))
        return refused("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")

    async def refund(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.refund; `out_request_no` makes it idempotent."""
        charge, amount = self._charge(biz), _amount(biz, "refund_amount")
        request_no = str(biz.get("out_request_no") or "")
        if charge is None or charge.state is not ChargeState.CHARGED:
            return refused("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        if amount is None or not request_no:
            return refused("40002", "isv.invalid-parameter", "refund_amount, out_request_no")
        repeated = self.channel.ledger.refund_get(request_no) is not None
        result = await self.channel.refund(RefundRequest(request_no, charge.reference, amount))
        if result.outcome is not ProviderOutcome.SUCCEEDED:
            return refused("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        return ok(
            **_trade(charge.idempotency_key, charge.reference, charge.amount),
            refund_fee=_yuan_of(amount),
            fund_change="N" if repeated else "Y",
        )

    def close(self, biz: dict[str, Any]) -> dict[str, Any]:
        key = str(biz.get("out_trade_no", ""))
        charge = self.channel.ledger.get(key)
        if charge is not None and charge.state is ChargeState.CHARGED:
            return refused("40004", "ACQ.REASON_TRADE_STATUS_INVALID", "交易状态不合法")
        if charge is not None and charge.state is ChargeState.AWAITING_AUTHENTICATION:
            # a payment code the buyer has not confirmed: closed, it can no longer be
            charge.state = ChargeState.DECLINED
            self.channel.ledger.put(charge)
            self.waiting[key] = Waiting(charge.amount, closed=True)
        if key not in self.waiting:
            return refused("40004", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        self.waiting[key].closed = True
        return ok(out_trade_no=key)

    async def cancel(self, biz: dict[str, Any]) -> dict[str, Any]:
        """alipay.trade.cancel: close if unpaid, refund in full if paid."""
        charge = self._charge(biz)
        key = str(biz.get("out_trade_no", ""))
        if charge is not None and charge.state is ChargeState.CHARGED:
            left = charge.amount.minor - charge.refunded
            if left > 0:
                await self.channel.refund(
                    RefundRequest(f"cancel_{key}", charge.reference, Money(left, "CNY"))
                )
            return ok(out_trade_no=key, retry_flag="N", action="refund")
        if key in self.waiting:
            self.waiting[key].closed = True
        return ok(out_trade_no=key, retry_flag="N", action="close")

    def notification(self, key: str) -> dict[str, str] | None:
        """The fields of the asynchronous notification of a paid trade (unsigned)."""
        charge = self.channel.ledger.get(key)
        if charge is None or charge.state is not ChargeState.CHARGED:
            return None
        return {
            "notify_type": "trade_status_sync",
            "notify_id": f"sim{charge.reference}",
            "trade_no": charge.reference,
            "out_trade_no": key,
            "trade_status": "TRADE_SUCCESS",
            "total_amount": charge.amount.format(),
            "receipt_amount": charge.amount.format(),
            "gmt_payment": self._now(),
        }

    def bill_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """The trade bill's rows: each paid trade, and its refunds (as one row)."""
        rows = []
        for c in self.channel.ledger.all_charges():
            if c.state is not ChargeState.CHARGED:
                continue
            rows.append((c.reference, c.idempotency_key, "交易", c.amount.format(),
                         c.amount.format(), ""))  # fmt: skip
            if c.refunded:
                back = Money(-c.refunded, c.amount.currency).format()
                rows.append((c.reference, c.idempotency_key, "退款", back, back, ""))
        return rows

    def _charge(self, biz: dict[str, Any]) -> Any:
        ledger = self.channel.ledger
        if biz.get("out_trade_no"):
            return ledger.get(str(biz["out_trade_no"]))
        if biz.get("trade_no"):
            return ledger.by_reference(str(biz["trade_no"]))
        return None

    def _now(self) -> str:
        from paymend.providers.alipay.mapping import beijing_time

        return beijing_time(self.channel.clock.now())

    def _now_at(self) -> datetime:
        return self.channel.clock.now()


def _amount(biz: dict[str, Any], name: str = "total_amount") -> Money | None:
    try:
        money = Money.parse(str(biz.get(name, "")), "CNY")
    except InvalidInput:
        return None
    return money if money.minor > 0 else None


def _yuan(trade: Waiting) -> str:
    return trade.amount.format()


def _yuan_of(amount: Money) -> str:
    return amount.format()


def _trade(key: str, trade_no: str | None, amount: Money) -> dict[str, Any]:
    return {
        "trade_no": trade_no,
        "out_trade_no": key,
        "buyer_logon_id": "159****5620",
        "total_amount": amount.format(),
        "receipt_amount": amount.format(),
    }


def _refusal(result: ProviderResult) -> dict[str, Any]:
    code = result.raw_code or "SYSTEM_ERROR"
    if result.outcome is ProviderOutcome.DECLINED:
        return refused("40004", DECLINES.get(code, "ACQ.PAYMENT_FAIL"), result.raw_message or "")
    top, sub = ERRORS.get(code, ("20000", "isp.unknow-error"))
    return refused(top, sub, result.raw_message or "")
