"""Alipay's answers as paymend's ProviderResults, and its amounts as exact Money.

The raw code kept on the attempt is the most specific one Alipay gave (`sub_code`, else
`code`), classified through failures/providers/alipay.yaml; the message keeps `code`,
`msg`, `sub_code` and `sub_msg` together. Sources: the pages of each method on
https://opendocs.alipay.com/open/ (alipay.trade.pay 02ekfj, precreate 02ekfg, query
02ekfh, refund 02ekfk, close 02o6e7, cancel 02ekfi) and the public result codes
(https://opendocs.alipay.com/common/02km9f).
"""

from __future__ import annotations

from datetime import datetime

from paymend.domain.money import Money
from paymend.providers.alipay.client import BEIJING, Answer
from paymend.providers.answers import AnswerNotTrusted
from paymend.providers.base import ProviderOutcome, ProviderResult
from paymend.providers.metrics import UNTRUSTED as UNTRUSTED

USER_PAYING = "10003"  # trade.pay: the buyer confirms on the phone; query for the end
UNKNOWN_RESULT = "20000"  # service unavailable: whether it happened is unknown
PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
WAITING = "WAIT_BUYER_PAY"
CLOSED = "TRADE_CLOSED"
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"


KEY_PREFIX, TRADE_PREFIX = "paymend-", "paymend_"


def out_trade_no(idempotency_key: str) -> str:
    """The attempt's idempotency key as Alipay's `out_trade_no`, which takes letters,
    digits and underscores only (up to 64): paymend's keys are `paymend-att_…`, whose
    one hyphen becomes an underscore (`idempotency_key` turns it back)."""
    if idempotency_key.startswith(KEY_PREFIX):
        return TRADE_PREFIX + idempotency_key.removeprefix(KEY_PREFIX)
    return idempotency_key


def idempotency_key(trade_no: str) -> str:
    """The attempt's key from an `out_trade_no` Alipay echoes."""
    if trade_no.startswith(TRADE_PREFIX):
        return KEY_PREFIX + trade_no.removeprefix(TRADE_PREFIX)
    return trade_no


def yuan(amount: Money) -> str:
    """`total_amount` as Alipay takes it: yuan with two decimals ("19.99")."""
    if amount.currency != "CNY":
        raise ValueError(f"Alipay takes CNY amounts, not {amount.currency}")
    return amount.format()


def beijing_time(moment: datetime) -> str:
    """A moment as Alipay's times are written: `yyyy-MM-dd HH:mm:ss`, Beijing time (the
    gateway's clock: "以支付宝系统时间为准"); cut to the second, never later."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def read_beijing_time(text: str) -> datetime | None:
    """The moment an Alipay time names; None when it is not one."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def fen(text: object) -> Money:
    """An amount Alipay sent, exactly (raises for one finer than a fen)."""
    return Money.parse(str(text), "CNY")


def untrusted(provider: str, exc: AnswerNotTrusted) -> ProviderResult:
    """An answer nobody can believe: unknown, so the engine asks before anything else
    (the code is in no map: classified unrecognized_response, query first)."""
    UNTRUSTED.labels(provider, exc.raw_code).inc()
    return ProviderResult(ProviderOutcome.ERROR, exc.raw_code, str(exc))


def _failure(answer: Answer) -> ProviderResult:
    """A call Alipay did not carry out. 40004 is its business refusal (the sub_code
    says why: a decline the customer can act on); 20000 and anything else are errors
    whose meaning the catalogue decides (queried when it may have happened)."""
    outcome = ProviderOutcome.DECLINED if answer.code == "40004" else ProviderOutcome.ERROR
    return ProviderResult(outcome, answer.raw_code, answer.raw_message, raw=dict(answer.body))


def payment(answer: Answer) -> ProviderResult:
    """alipay.trade.pay: 10000 paid; 10003 the buyer is confirming (unknown: query)."""
    if answer.ok:
        return ProviderResult(
            ProviderOutcome.SUCCEEDED,
            answer.code,
            answer.raw_message,
            str(answer.body.get("trade_no") or "") or None,
            raw=dict(answer.body),
        )
    if answer.code == USER_PAYING:
        return ProviderResult(
            ProviderOutcome.PENDING, answer.code, answer.raw_message, raw=dict(answer.body)
        )
    return _failure(answer)


def waiting(answer: Answer, next_action: dict[str, str]) -> ProviderResult:
    """alipay.trade.precreate (or a redirect built here): the trade waits for the buyer
    to scan the QR code or pay on Alipay's page."""
    if not answer.ok:
        return _failure(answer)
    return ProviderResult(
        ProviderOutcome.REQUIRES_ACTION,
        WAITING,
        f"waiting for the buyer: {next_action['type']} {next_action['url']}",
        raw={"next_action": next_action},
    )


def waiting_redirect(next_action: dict[str, str]) -> ProviderResult:
    """alipay.trade.page.pay / wap.pay: nothing was called; the buyer goes to the URL."""
    return ProviderResult(
        ProviderOutcome.REQUIRES_ACTION,
        WAITING,
        f"waiting for the buyer: {next_action['type']}",
        raw={"next_action": next_action},
    )


def query(answer: Answer) -> ProviderResult:
    """alipay.trade.query: the trade's status, or that Alipay has no such trade."""
    if answer.ok:
        status = str(answer.body.get("trade_status", ""))
        reference = str(answer.body.get("trade_no") or "") or None
        if status in PAID:
            return ProviderResult(
                ProviderOutcome.SUCCEEDED, status, answer.raw_message, reference, dict(answer.body)
            )
        if status == WAITING:
            return ProviderResult(ProviderOutcome.PENDING, status, answer.raw_message, reference)
        if status == CLOSED:  # closed unpaid (or fully refunded: never our unknown one)
            return ProviderResult(ProviderOutcome.DECLINED, status, answer.raw_message, reference)
        return ProviderResult(ProviderOutcome.ERROR, status or "UNKNOWN_STATUS", answer.raw_message)
    if answer.sub_code == NOT_EXIST:
        return ProviderResult(ProviderOutcome.NOT_FOUND, NOT_EXIST, answer.raw_message)
    return ProviderResult(ProviderOutcome.ERROR, answer.raw_code, answer.raw_message)


def refund(answer: Answer, out_request_no: str) -> ProviderResult:
    """alipay.trade.refund: done (`fund_change` N on a repeated request: done before)."""
    if answer.ok:
        return ProviderResult(
            ProviderOutcome.SUCCEEDED,
            answer.code,
            answer.raw_message,
            out_request_no,
            raw=dict(answer.body),
        )
    return _failure(answer)


def trade_status(status: str, trade_no: str | None, message: str) -> ProviderResult:
    """A notification's `trade_status`, read as a status query's answer."""
    if status in PAID:
        return ProviderResult(ProviderOutcome.SUCCEEDED, status, message, trade_no)
    if status == CLOSED:
        return ProviderResult(ProviderOutcome.DECLINED, status, message, trade_no)
    return ProviderResult(ProviderOutcome.PENDING, status or "UNKNOWN_STATUS", message, trade_no)
