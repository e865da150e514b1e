"""The trade bill as WeChat Pay publishes it, and notifications beyond the happy path:
a refund's, another merchant's, a resource that does not open."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from paymend.domain.money import Money
from paymend.engine.clock import SystemClock
from paymend.providers.base import ProviderNotification, ProviderOutcome
from paymend.providers.wechatpay import bill, notifications, signing
from tests.providers.wechatpay.face import keys

# the shape of WeChat Pay's example trade bill (bill_type=ALL): a header, backtick-
# prefixed values, a paid order, a refund of part of it, another paid order, totals
SAMPLE = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注\n"
    "`2026-11-30 10:00:01,`wxd678efh567hg6787,`1900000109,`0,`,"
    "`4200000001202611300000000001,`att_aaaaaaaaaaaaaaaaaaaaaaaa,`oUpF8u,`NATIVE,`SUCCESS,"
    "`OTHERS,`CNY,`19.99,`0.00,`0,`0,`0.00,`0.00,`,`,`order,`,`0.12,`0.60%,`19.99,`0.00,`\n"
    "`2026-11-30 11:00:00,`wxd678efh567hg6787,`1900000109,`0,`,"
    "`4200000001202611300000000001,`att_aaaaaaaaaaaaaaaaaaaaaaaa,`oUpF8u,`NATIVE,`REFUND,"
    "`OTHERS,`CNY,`0.00,`0.00,`50300000012026113000000001,`re_1,`5.00,`0.00,`ORIGINAL,"
    "`SUCCESS,`order,`,`-0.03,`0.60%,`0.00,`5.00,`\n"
    "`2026-11-30 12:00:00,`wxd678efh567hg6787,`1900000109,`0,`,"
    "`4200000001202611300000000002,`att_bbbbbbbbbbbbbbbbbbbbbbbb,`oUpF8u,`MICROPAY,`SUCCESS,"
    "`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`order,`,`0.00,`0.60%,`0.01,`0.00,`\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
    "`3,`20.00,`5.00,`0.00,`0.09,`20.00,`5.00\n"
)


def test_the_trade_bill_gives_each_paid_order_and_what_was_refunded_of_it() -> None:
    lines = {line.reference: line for line in bill.parse("\ufeff" + SAMPLE)}
    one, two = lines["4200000001202611300000000001"], lines["4200000001202611300000000002"]
    assert (one.idempotency_key, one.amount, one.refunded) == (
        "att_aaaaaaaaaaaaaaaaaaaaaaaa",
        Money(1999, "CNY"),
        500,
    )
    assert (two.amount, two.refunded) == (Money(1, "CNY"), 0)
    assert len(lines) == 2  # the totals are not an order
    assert bill.sha1_matches(b"abc", "A9993E364706816ABA3E25717850C26C9CD0D89D")


def notification(event: str, content: Mapping[str, object]) -> tuple[dict[str, str], bytes]:
    k = keys()
    plain = json.dumps(content).encode()
    resource = {
        "original_type": event.split(".")[0].lower(),
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": signing.encrypt(k.api_v3_key, "0123456789ab", "transaction", plain),
        "associated_data": "transaction",
        "nonce": "0123456789ab",
    }
    body = json.dumps({"id": "n1", "event_type": event, "resource": resource})
    now = int(SystemClock().now().timestamp())
    signed = signing.signed_by(k.wechatpay_private, k.public_key_id, body, now)
    return {key.lower(): v for key, v in signed.headers().items()}, body.encode()


def test_a_payment_notification_names_the_attempt_and_its_amount() -> None:
    paid = {
        "mchid": keys().mchid,
        "out_trade_no": "att_aaaaaaaaaaaaaaaaaaaaaaaa",
        "transaction_id": "4200000001",
        "trade_state": "SUCCESS",
        "amount": {"total": 1999, "currency": "CNY"},
    }
    told = read(*notification("TRANSACTION.SUCCESS", paid))
    assert told.idempotency_key == "paymend-att_aaaaaaaaaaaaaaaaaaaaaaaa"
    assert (told.result.outcome, told.amount) == (ProviderOutcome.SUCCEEDED, Money(1999, "CNY"))
    assert told.reply.status == 200 and json.loads(told.reply.body)["code"] == "SUCCESS"


def test_a_refund_notification_is_acknowledged_and_names_no_attempt() -> None:
    refund = {"mchid": keys().mchid, "refund_id": "503", "refund_status": "SUCCESS"}
    told = read(*notification("REFUND.SUCCESS", refund))
    assert told.idempotency_key is None and told.reference == "503"
    assert told.result.outcome is ProviderOutcome.PENDING


def test_another_merchants_or_an_unopenable_notification_is_refused() -> None:
    other = {"mchid": "1900000999", "out_trade_no": "att_1", "trade_state": "SUCCESS"}
    with pytest.raises(ValueError, match="another merchant"):
        read(*notification("TRANSACTION.SUCCESS", other))
    headers, body = notification("TRANSACTION.SUCCESS", {"trade_state": "SUCCESS"})
    with pytest.raises(ValueError, match="does not decrypt"):
        read(headers, body, api_v3_key="x" * 32)


def read(
    headers: Mapping[str, str], body: bytes, api_v3_key: str | None = None
) -> ProviderNotification:
    """The notification as the merchant of the face's keys reads it now (`api_v3_key`:
    another key than theirs)."""
    k = keys()
    return notifications.read(
        headers,
        body,
        mchid=k.mchid,
        api_v3_key=k.api_v3_key if api_v3_key is None else api_v3_key,
        public_key=k.wechatpay_private.public_key(),
        public_key_id=k.public_key_id,
        now=SystemClock().now().timestamp(),
    )
