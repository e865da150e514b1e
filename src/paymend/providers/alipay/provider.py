"""The Alipay channel: paymend's Provider over the open platform gateway.

- `authorize`: with a payment code (the payment's token: the code the customer's app
  shows) `alipay.trade.pay`, scene `bar_code`; without one, the channel's `flow`: a QR
  code (`alipay.trade.precreate`) or a redirect to Alipay's cashier page
  (`alipay.trade.page.pay` / `wap.pay`, a signed URL built here, expiring with the
  payment: `time_expire`); both answer `requires_action` with the `next_action`, and the
  payment settles when the buyer pays (the notification, or a status query).
- `query`: `alipay.trade.query` by `out_trade_no`; `refund`: `alipay.trade.refund` with
  the refund's key as `out_request_no`; `close_unpaid` (the engine's cancel)
  and `cancel` (a payment-code trade); `settlements`: the daily
  trade bills; `parse_notification`: the asynchronous notification; `check`: a signed
  query of an order that cannot exist.

`out_trade_no` is always the attempt's idempotency key, so a repeated call finds the
trade it created and never makes a second one. An answer that cannot be read or whose
signature does not verify is an unknown outcome, never a failure: the engine queries.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.providers.alipay import bill, mapping, notifications, signing
from paymend.providers.alipay.client import BEIJING, AlipayClient, Answer
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

PAY = "alipay.trade.pay"
PRECREATE = "alipay.trade.precreate"
PAGE_PAY = "alipay.trade.page.pay"
WAP_PAY = "alipay.trade.wap.pay"
QUERY = "alipay.trade.query"
REFUND = "alipay.trade.refund"
CLOSE = "alipay.trade.close"
CANCEL = "alipay.trade.cancel"
BILL = "alipay.data.dataservice.bill.downloadurl.query"
CHECK_ORDER = "paymend_channels_check_0"  # never an attempt's key (those start att_)
BILL_NOT_READY = frozenset({"isp.bill_not_exist", "isv.bill_not_exist"})
# a cashier page's trade expires with the payment; without the payment's deadline, this
# long after the URL is made (the engine's default settle_within)
PAY_WITHIN_S = 300.0


class AlipayProvider:
    """One Alipay app as a paymend channel."""

    code_map = "alipay"

    def __init__(
        self,
        name: str,
        client: AlipayClient,
        capabilities: Capabilities,
        *,
        flow: str = "qr",
        subject: str = "paymend order",
        return_url: str | None = None,
        bill_days: int = 2,
        pay_within_s: float = PAY_WITHIN_S,
    ) -> None:
        self.name = name
        self.client = client
        self.capabilities = capabilities
        self.flow = flow
        self.subject = subject
        self.return_url = return_url
        self.bill_days = bill_days
        self.pay_within_s = pay_within_s
        # the Beijing days the last settlements() read bills of (SettlementPeriod)
        self.settled_between: tuple[datetime, datetime] | None = None

    async def _call(self, method: str, biz: dict[str, Any]) -> Answer:
        return await self.client.call(method, biz)

    # -- the Provider protocol ---------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        biz: dict[str, Any] = {
            "out_trade_no": mapping.out_trade_no(request.idempotency_key),
            "total_amount": mapping.yuan(request.amount),
            "subject": self.subject,
        }
        flow = request.metadata.get("alipay_flow", self.flow)
        try:
            if request.token:  # the payment code the customer's app shows
                biz |= {"scene": "bar_code", "auth_code": request.token}
                biz["product_code"] = "FACE_TO_FACE_PAYMENT"
                return mapping.payment(await self._call(PAY, biz))
            if flow in ("page", "wap"):
                method = PAGE_PAY if flow == "page" else WAP_PAY
                page = flow == "page"
                biz["product_code"] = "FAST_INSTANT_TRADE_PAY" if page else "QUICK_WAP_WAY"
                biz["time_expire"] = mapping.beijing_time(self._pay_by(request))
                url = self.client.page_url(method, biz, self.return_url)
                return mapping.waiting_redirect({"type": "redirect", "url": url})
            answer = await self._call(PRECREATE, biz)
            qr = str(answer.body.get("qr_code", "")) if answer.ok else ""
            return mapping.waiting(answer, {"type": "scan_qr_code", "url": qr})
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)

    def _pay_by(self, request: ChargeRequest) -> datetime:
        """When a cashier page's trade expires: `time_expire`, the absolute time after
        which Alipay refuses to open the page and closes a trade still unpaid
        (alipay-sdk-python-all alipay/aop/api/domain/AlipayTradePagePayModel.py and
        AlipayTradeWapPayModel.py `time_expire`, "绝对超时时间，格式为yyyy-MM-dd
        HH:mm:ss"; it wins over `timeout_express`, which counts from the trade's
        creation, i.e. from when the buyer opens the page:
        https://developer.aliyun.com/article/710964). So a URL the customer never
        opened leaves no trade to charge after the payment's deadline."""
        if request.pay_by is not None:
            return request.pay_by
        return self.client.clock.now() + timedelta(seconds=self.pay_within_s)

    async def query(self, request: QueryRequest) -> ProviderResult:
        try:
            return mapping.query(
                await self._call(
                    QUERY, {"out_trade_no": mapping.out_trade_no(request.idempotency_key)}
                )
            )
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)

    async def refund(self, request: RefundRequest) -> ProviderResult:
        biz = {
            "trade_no": request.charge_reference,
            "refund_amount": mapping.yuan(request.amount),
            "out_request_no": mapping.out_trade_no(request.idempotency_key),
        }
        try:
            return mapping.refund(await self._call(REFUND, biz), request.idempotency_key)
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)

    async def close_unpaid(self, request: QueryRequest) -> ProviderResult:
        """`alipay.trade.close` (https://opendocs.alipay.com/open/02ekfj): an unpaid trade
        (`WAIT_BUYER_PAY`: a QR code, a cashier page, a payment code the buyer has not
        confirmed) can no longer be paid. Alipay closes only an unpaid trade; refused,
        the trade is queried, so a trade the buyer paid meanwhile answers SUCCEEDED and
        its charge is kept. `ACQ.TRADE_NOT_EXIST`: Alipay made no trade yet (nobody
        scanned the code or opened the page): NOT_FOUND. Not `alipay.trade.cancel`,
        which refunds a paid trade instead of saying it was paid
        (https://opendocs.alipay.com/open/02ekfi)."""
        number = mapping.out_trade_no(request.idempotency_key)
        try:
            answer = await self._call(CLOSE, {"out_trade_no": number})
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)
        if answer.ok:
            return ProviderResult(ProviderOutcome.DECLINED, mapping.CLOSED, answer.raw_message)
        if answer.sub_code == mapping.NOT_EXIST:
            return ProviderResult(ProviderOutcome.NOT_FOUND, mapping.NOT_EXIST, answer.raw_message)
        return await self.query(request)  # refused: paid meanwhile, or another reason

    async def cancel(self, idempotency_key: str) -> ProviderResult:
        """Cancel a payment-code trade whatever became of it: closed if unpaid, refunded
        if paid (`action` says which)."""
        try:
            answer = await self._call(
                CANCEL, {"out_trade_no": mapping.out_trade_no(idempotency_key)}
            )
        except AnswerNotTrusted as exc:
            return mapping.untrusted(self.name, exc)
        outcome = ProviderOutcome.SUCCEEDED if answer.ok else ProviderOutcome.ERROR
        return ProviderResult(outcome, answer.raw_code, answer.raw_message, raw=dict(answer.body))

    async def aclose(self) -> None:
        """Close the HTTP connections of the running loop (the runtime's stop)."""
        await self.client.aclose()

    async def settlements(self) -> list[SettlementLine]:
        """The trades of the last `bill_days` daily bills (up to today; a day whose bill
        Alipay has not made yet is skipped)."""
        today = self.client.clock.now().astimezone(BEIJING).date()
        lines: dict[str, SettlementLine] = {}
        read: list[date] = []
        for back in range(self.bill_days - 1, -1, -1):
            day = today - timedelta(days=back)
            answer = await self._call(BILL, {"bill_type": "trade", "bill_date": day.isoformat()})
            if not answer.ok:
                if answer.sub_code in BILL_NOT_READY:
                    continue
                raise ProviderConnectionError(answer.raw_code, answer.raw_message, sent=False)
            read.append(day)
            content = await self.client.download(str(answer.body["bill_download_url"]))
            for text in bill.files(content):
                for line in bill.parse(text):
                    key = mapping.idempotency_key(line.idempotency_key)
                    lines[line.reference] = replace(line, idempotency_key=key)
        self.settled_between = _days(read[0], read[-1]) if read else _days(today, today, 0)
        return list(lines.values())

    def parse_notification(self, headers: Any, body: bytes) -> ProviderNotification:
        return notifications.read(body, self.client.app_id, self.client.alipay_public_key)

    async def check(self) -> CheckResult:
        """Credentials and reachability: a signed query for an order that cannot exist.
        Only the real gateway, knowing our app and key, answers ACQ.TRADE_NOT_EXIST."""
        try:
            answer = await self._call(QUERY, {"out_trade_no": CHECK_ORDER})
        except AnswerNotTrusted as exc:
            return CheckResult(False, f"{exc.raw_code}: {exc}")
        except ProviderConnectionError as exc:
            return CheckResult(False, f"{exc.raw_code}: {exc.raw_message}")
        if answer.sub_code == mapping.NOT_EXIST:
            return CheckResult(
                True, f"{self.client.gateway}: signed query answered {answer.raw_code}"
            )
        return CheckResult(False, answer.raw_message)


def _days(first: date, last: date, count: int = 1) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in Beijing time; empty with count 0."""
    start = datetime.combine(first, time(), BEIJING)
    end = datetime.combine(last, time(), BEIJING) + timedelta(days=count)
    return start, end


def build(spec: Any, clock: Clock) -> AlipayProvider:
    """The registry's builder (providers/registry.py) for `type: alipay`."""
    options = spec.options
    client = AlipayClient(
        gateway=spec.base_url,
        app_id=str(options["app_id"]),
        private_key=signing.load_private_key(spec.credentials["app_private_key"]),
        alipay_public_key=signing.load_public_key(spec.credentials["alipay_public_key"]),
        clock=clock,
        notify_url=options.get("notify_url"),
        timeout_s=spec.timeout_s,
        transport=spec.transport if isinstance(spec.transport, httpx.AsyncBaseTransport) else None,
    )
    return AlipayProvider(
        spec.name,
        client,
        spec.capabilities,
        flow=str(options.get("flow", "qr")),
        subject=str(options.get("subject", "paymend order")),
        return_url=options.get("return_url"),
        bill_days=int(options.get("bill_days", 2)),
        pay_within_s=float(options.get("pay_within_s", PAY_WITHIN_S)),
    )
