"""WeChat Pay's answers as paymend's ProviderResults, its order numbers and its amounts.

The raw code kept on the attempt is the error's `code` (`NOT_ENOUGH`, `ORDER_NOT_EXIST`),
or its HTTP status when the body has none, or a query's `trade_state`; all are
classified through failures/providers/wechatpay.yaml. The message keeps the HTTP
status, `code`, `message` and `detail`. Amounts are integer fen (`amount.total`), CNY.

Sources: https://pay.weixin.qq.com/doc/v3/merchant/4012382150 (付款码支付, codepay),
https://pay.weixin.qq.com/doc/v3/merchant/4013070356 (商户订单号查询订单: `trade_state`
SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR), the Native, JSAPI and
H5 order pages (`code_url`, `prepay_id`, `h5_url`) and 申请退款 (`status` SUCCESS,
CLOSED, PROCESSING, ABNORMAL) of the same documentation.
"""

from __future__ import annotations

import re

from paymend.domain.money import Money
from paymend.providers.answers import AnswerNotTrusted
from paymend.providers.base import ProviderOutcome, ProviderResult
from paymend.providers.metrics import UNTRUSTED as UNTRUSTED
from paymend.providers.wechatpay.client import Answer

PAID = frozenset({"SUCCESS", "REFUND"})  # REFUND: paid, then (partly) refunded
WAITING = frozenset({"NOTPAY", "USERPAYING"})
ENDED_UNPAID = frozenset({"CLOSED", "REVOKED", "PAYERROR"})
NOT_EXIST = "ORDER_NOT_EXIST"
USER_PAYING = "USERPAYING"
KEY_PREFIX = "paymend-"
_OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")


def out_trade_no(idempotency_key: str) -> str:
    """The attempt's idempotency key as WeChat Pay's `out_trade_no` (6 to 32 letters,
    digits, `_-|*`): paymend's keys are `paymend-att_` and 24 characters (36 in all),
    so the `paymend-` prefix is dropped and the attempt's id itself is the order number
    (`idempotency_key` puts it back). A key that still does not fit is refused here
    rather than cut, which could make two attempts one order."""
    number = idempotency_key.removeprefix(KEY_PREFIX)
    if not _OUT_TRADE_NO.match(number):
        raise ValueError(f"'{number}' cannot be a WeChat Pay out_trade_no")
    return number


def out_refund_no(idempotency_key: str) -> str:
    """The refund's key as `out_refund_no` (up to 64 of the same characters)."""
    return idempotency_key.removeprefix(KEY_PREFIX)


def idempotency_key(trade_no: str) -> str:
    """The attempt's key from an `out_trade_no` WeChat Pay echoes."""
    if trade_no.startswith(("att_", "re_")):
        return KEY_PREFIX + trade_no
    return trade_no


def total(amount: Money) -> dict[str, object]:
    """`amount` as WeChat Pay takes it: integer fen and the currency."""
    if amount.currency != "CNY":
        raise ValueError(f"WeChat Pay takes CNY amounts, not {amount.currency}")
    return {"total": amount.minor, "currency": "CNY"}


def fen(value: object) -> Money:
    """An amount WeChat Pay sent (integer fen), exactly."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not an amount in fen: {value!r}")
    return Money(value, "CNY")


def untrusted(provider: str, exc: AnswerNotTrusted) -> ProviderResult:
    """An answer nobody can believe: unknown, so the engine asks before anything else
    (its code is in no map: classified unrecognized_response, query first)."""
    UNTRUSTED.labels(provider, exc.raw_code).inc()
    return ProviderResult(ProviderOutcome.ERROR, exc.raw_code, str(exc))


# refusals that are about the payer or the order, not the channel: declines
DECLINES = frozenset(
    {
        "NOT_ENOUGH",
        "TRADE_ERROR",
        "AUTH_CODE_INVALID",
        "AUTH_CODE_EXPIRE",
        "USER_ACCOUNT_ABNORMAL",
        "ACCOUNT_ERROR",
        "RULE_LIMIT",
        "ORDER_CLOSED",
        "ORDER_REVERSED",
    }
)


def _failure(answer: Answer) -> ProviderResult:
    """A call WeChat Pay refused. A payer's or order's refusal (NOT_ENOUGH, …) is a
    decline the customer may act on; anything else (SIGN_ERROR, PARAM_ERROR, 429, a
    5xx's SYSTEM_ERROR or BANK_ERROR, …) is an error whose meaning the catalogue decides:
    queried first where the money may have moved."""
    outcome = ProviderOutcome.DECLINED if answer.raw_code in DECLINES else ProviderOutcome.ERROR
    return ProviderResult(outcome, answer.raw_code, answer.raw_message, raw=dict(answer.body))


def transaction(answer: Answer) -> ProviderResult:
    """A transaction object (codepay's answer, a query's): what became of the charge."""
    data = answer.body
    state = str(data.get("trade_state", ""))
    reference = str(data.get("transaction_id") or "") or None
    message = f"HTTP {answer.status}; trade_state={state}; {data.get('trade_state_desc', '')}"
    if state in PAID:
        return ProviderResult(ProviderOutcome.SUCCEEDED, state, message[:500], reference, data)
    if state in WAITING:
        return ProviderResult(ProviderOutcome.PENDING, state, message[:500], reference)
    if state in ENDED_UNPAID:
        return ProviderResult(ProviderOutcome.DECLINED, state, message[:500], reference)
    return ProviderResult(ProviderOutcome.ERROR, state or "UNKNOWN_STATE", message[:500])


def codepay(answer: Answer) -> ProviderResult:
    """付款码支付: 200 with the transaction (paid); USERPAYING (the buyer is entering the
    password: unknown, query for the end); a refusal."""
    if answer.raw_code == USER_PAYING or answer.status == 202:
        return ProviderResult(ProviderOutcome.PENDING, USER_PAYING, answer.raw_message)
    if answer.ok:
        return transaction(answer)
    return _failure(answer)


def waiting(answer: Answer, next_action: dict[str, str]) -> ProviderResult:
    """A Native, JSAPI or H5 order: created, it waits for the buyer (`NOTPAY`)."""
    if not answer.ok:
        return _failure(answer)
    return ProviderResult(
        ProviderOutcome.REQUIRES_ACTION,
        "NOTPAY",
        f"waiting for the buyer: {next_action['type']}",
        raw={"next_action": next_action},
    )


def query(answer: Answer) -> ProviderResult:
    """商户订单号查询订单: the transaction, or that WeChat Pay has no such order."""
    if answer.ok:
        return transaction(answer)
    if answer.raw_code == NOT_EXIST or answer.status == 404:
        return ProviderResult(ProviderOutcome.NOT_FOUND, NOT_EXIST, answer.raw_message)
    return ProviderResult(ProviderOutcome.ERROR, answer.raw_code, answer.raw_message)


def refund(answer: Answer) -> ProviderResult:
    """申请退款: SUCCESS done; PROCESSING accepted (pending: the same `out_refund_no` is
    sent again later and answers what became of it); CLOSED/ABNORMAL did not happen."""
    if not answer.ok:
        return _failure(answer)
    status = str(answer.body.get("status", ""))
    reference = str(answer.body.get("refund_id") or "") or None
    message = f"HTTP {answer.status}; status={status}"
    if status == "SUCCESS":
        return ProviderResult(ProviderOutcome.SUCCEEDED, status, message, reference, answer.body)
    if status == "PROCESSING":
        return ProviderResult(ProviderOutcome.PENDING, status, message, reference)
    return ProviderResult(ProviderOutcome.DECLINED, status or "UNKNOWN_STATUS", message, reference)
