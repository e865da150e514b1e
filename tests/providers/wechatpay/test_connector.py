"""The WeChat Pay connector against the simulator's WeChat Pay v3 face, in-process: what
each API is sent, what each answer becomes, and that nothing untrusted is believed."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from paymend.domain.money import Money
from paymend.engine.clock import SystemClock
from paymend.providers.base import (
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    QueryRequest,
    RefundRequest,
)
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.providers.wechatpay import WechatpayProvider, build, mapping, signing
from paymend.sim.wechatpay_api import MerchantKeys, WechatpayApi
from tests.helpers import ManualClock
from tests.providers.wechatpay.face import connector, face, keys, spec

AMOUNT = Money(1999, "CNY")
KEY = "paymend-att_aaaaaaaaaaaaaaaaaaaaaaaa"  # an attempt's key: 36 characters


def charge(key: str = KEY, token: str | None = "sim_approve", **metadata: str) -> ChargeRequest:
    return ChargeRequest(key, "pay_1", AMOUNT, "wechat_pay", token=token, metadata=metadata)


def test_an_attempts_key_is_a_valid_out_trade_no_and_comes_back() -> None:
    number = mapping.out_trade_no(KEY)
    assert number == "att_aaaaaaaaaaaaaaaaaaaaaaaa" and len(number) <= 32
    assert mapping.idempotency_key(number) == KEY
    with pytest.raises(ValueError):
        mapping.out_trade_no("paymend-" + "x" * 40)  # refused, never cut


def test_a_payment_code_is_paid_and_queried_under_its_out_trade_no() -> None:
    api = face()
    wechat = connector(api)
    number = mapping.out_trade_no(KEY)

    async def go() -> None:
        paid = await wechat.authorize(charge())
        assert paid.outcome is ProviderOutcome.SUCCEEDED and paid.reference
        again = await wechat.authorize(charge())  # a repeat finds the same order
        assert again.reference == paid.reference
        queried = await wechat.query(QueryRequest(KEY, "pay_1"))
        assert (queried.outcome, queried.raw_code) == (ProviderOutcome.SUCCEEDED, "SUCCESS")
        assert queried.reference == paid.reference
        missing = await wechat.query(QueryRequest("paymend-att_bbbbbbbbbbbbbbbbbbbbbbbb", "p"))
        assert (missing.outcome, missing.raw_code) == (ProviderOutcome.NOT_FOUND, "ORDER_NOT_EXIST")

    asyncio.run(go())
    assert len(api.channel.ledger.charged(number)) == 1
    assert api.calls == ["POST /v3/pay/transactions/codepay"] * 2 + [
        f"GET /v3/pay/transactions/out-trade-no/{number}",
        "GET /v3/pay/transactions/out-trade-no/att_bbbbbbbbbbbbbbbbbbbbbbbb",
    ]
    assert api.channel.ledger.get(number).amount == AMOUNT  # type: ignore[union-attr]


def test_a_decline_keeps_the_status_code_and_message() -> None:
    result = asyncio.run(
        connector(face()).authorize(charge(token="sim_decline_insufficient_funds"))
    )
    assert (result.outcome, result.raw_code) == (ProviderOutcome.DECLINED, "NOT_ENOUGH")
    assert result.raw_message is not None
    assert result.raw_message.startswith("HTTP 403; code=NOT_ENOUGH; message=")


def test_a_buyer_still_entering_the_password_is_pending_until_a_query_tells() -> None:
    wechat = connector(face())
    paying = asyncio.run(wechat.authorize(charge(token="sim_3ds")))
    assert (paying.outcome, paying.raw_code) == (ProviderOutcome.PENDING, "USERPAYING")
    assert paying.raw_message is not None and "HTTP 202" in paying.raw_message
    queried = asyncio.run(wechat.query(QueryRequest(KEY, "pay_1")))
    assert (queried.outcome, queried.raw_code) == (ProviderOutcome.PENDING, "USERPAYING")


def test_a_system_error_is_an_error_the_catalogue_queries() -> None:
    result = asyncio.run(connector(face()).authorize(charge(token="sim_error_system_error")))
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "SYSTEM_ERROR")


def test_native_h5_and_jsapi_orders_answer_the_next_action() -> None:
    api = face()
    wechat = connector(api)
    native = asyncio.run(wechat.authorize(charge(token=None)))
    assert (native.outcome, native.raw_code) == (ProviderOutcome.REQUIRES_ACTION, "NOTPAY")
    assert native.raw["next_action"]["type"] == "scan_qr_code"
    assert native.raw["next_action"]["url"].startswith("weixin://wxpay/bizpayurl?pr=")

    h5_key = "paymend-att_hhhhhhhhhhhhhhhhhhhhhhhh"
    h5 = asyncio.run(
        wechat.authorize(charge(h5_key, None, wechatpay_flow="h5", payer_client_ip="203.0.113.9"))
    )
    assert h5.raw["next_action"]["type"] == "redirect"
    assert "/sim/h5/att_hhhh" in h5.raw["next_action"]["url"]
    no_ip = asyncio.run(wechat.authorize(charge(h5_key, None, wechatpay_flow="h5")))
    assert (no_ip.outcome, no_ip.raw_code) == (ProviderOutcome.ERROR, "PARAM_ERROR")

    js_key = "paymend-att_jjjjjjjjjjjjjjjjjjjjjjjj"
    js = asyncio.run(wechat.authorize(charge(js_key, None, wechatpay_flow="jsapi", openid="o1")))
    action = js.raw["next_action"]
    assert (action["type"], action["sdk"]) == ("sdk", "wechat_jsapi")
    params = json.loads(action["parameters"])
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    signed = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    assert signing.verify(keys().merchant_private.public_key(), signed, params["paySign"])
    assert set(api.trades.waiting) == {
        "att_aaaaaaaaaaaaaaaaaaaaaaaa",
        "att_hhhhhhhhhhhhhhhhhhhhhhhh",
        "att_jjjjjjjjjjjjjjjjjjjjjjjj",
    }


def test_a_refund_is_idempotent_under_its_out_refund_no() -> None:
    api = face()
    wechat = connector(api)

    async def go() -> None:
        paid = await wechat.authorize(charge())
        assert paid.reference is not None
        part = RefundRequest("paymend-re_1", paid.reference, Money(999, "CNY"))
        assert (await wechat.refund(part)).outcome is ProviderOutcome.SUCCEEDED
        assert (await wechat.refund(part)).outcome is ProviderOutcome.SUCCEEDED  # same key
        too_much = RefundRequest("paymend-re_2", paid.reference, Money(1001, "CNY"))
        assert (await wechat.refund(too_much)).outcome is ProviderOutcome.DECLINED

    asyncio.run(go())
    assert api.channel.ledger.get("att_aaaaaaaaaaaaaaaaaaaaaaaa").refunded == 999  # type: ignore[union-attr]


def test_an_answer_signed_by_another_key_is_an_unknown_outcome() -> None:
    api = face()
    other = MerchantKeys.generate()
    creds = {
        **keys().credentials(),
        "wechatpay_public_key": other.credentials()["wechatpay_public_key"],
    }
    wechat = build(spec(transport=httpx.ASGITransport(app=api), credentials=creds), SystemClock())
    result = asyncio.run(wechat.authorize(charge()))
    assert (result.outcome, result.raw_code) == (
        ProviderOutcome.ERROR,
        "RESPONSE_SIGNATURE_INVALID",
    )
    assert mapping.UNTRUSTED.labels("wechatpay_cn", "RESPONSE_SIGNATURE_INVALID")._value.get() >= 1
    assert api.channel.ledger.charged("att_aaaaaaaaaaaaaaaaaaaaaaaa")  # it did charge

    wrong_id = build(
        spec(transport=httpx.ASGITransport(app=api), wechatpay_public_key_id="PUB_KEY_ID_0199"),
        SystemClock(),
    )
    result = asyncio.run(wrong_id.query(QueryRequest(KEY, "pay_1")))
    assert (result.outcome, result.raw_code) == (
        ProviderOutcome.ERROR,
        "RESPONSE_SIGNATURE_INVALID",
    )


def test_wrong_credentials_are_a_sign_error_not_a_crash() -> None:
    api = face()
    other = MerchantKeys.generate()
    creds = {**keys().credentials(), "mch_private_key": other.credentials()["mch_private_key"]}
    wechat = build(spec(transport=httpx.ASGITransport(app=api), credentials=creds), SystemClock())
    result = asyncio.run(wechat.authorize(charge()))
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "SIGN_ERROR")
    wrong_mch = build(
        spec(transport=httpx.ASGITransport(app=api), mchid="1900000999"), SystemClock()
    )
    check = asyncio.run(wrong_mch.check())
    assert not check.ok and "SIGN_ERROR" in check.detail
    assert not api.channel.ledger.all_charges()


def test_the_health_check_proves_keys_and_reachability() -> None:
    check = asyncio.run(connector(face()).check())
    assert check.ok, check.detail
    assert "ORDER_NOT_EXIST" in check.detail
    down = build(spec(base_url="http://127.0.0.1:9"), SystemClock())
    refused = asyncio.run(down.check())
    assert not refused.ok and "CONNECTION_REFUSED" in refused.detail


def test_an_outage_is_a_refused_call() -> None:
    wechat = connector(face(outage=True))
    with pytest.raises(ProviderConnectionError) as refused:
        asyncio.run(wechat.authorize(charge()))
    assert (refused.value.raw_code, refused.value.sent) == ("CONNECTION_REFUSED", False)


def test_an_unpaid_order_is_closed() -> None:
    api = face()
    wechat = connector(api)
    asyncio.run(wechat.authorize(charge(token=None)))
    closed = asyncio.run(wechat.close_unpaid(QueryRequest(KEY, "pay_1")))
    assert (closed.outcome, closed.raw_code) == (ProviderOutcome.DECLINED, "CLOSED")
    queried = asyncio.run(wechat.query(QueryRequest(KEY, "pay_1")))
    assert (queried.outcome, queried.raw_code) == (ProviderOutcome.DECLINED, "CLOSED")


def test_the_trade_bill_lists_transactions_and_refunds() -> None:
    api = face()
    wechat = connector(api)
    other = "paymend-att_cccccccccccccccccccccccc"

    async def go() -> None:
        one = await wechat.authorize(charge())
        await wechat.authorize(charge(other))
        assert one.reference is not None
        await wechat.refund(RefundRequest("paymend-re_1", one.reference, Money(500, "CNY")))

    asyncio.run(go())
    assert wechat.settled_between is None
    lines = {ln.idempotency_key: ln for ln in asyncio.run(wechat.settlements())}
    assert wechat.settled_between is not None
    start, end = wechat.settled_between
    assert start <= SystemClock().now() < end and (end - start).days == 1  # today, Beijing
    assert set(lines) == {KEY, other}
    assert (lines[KEY].amount, lines[KEY].refunded) == (AMOUNT, 500)
    assert lines[other].refunded == 0


def clocked() -> tuple[ManualClock, WechatpayApi, WechatpayProvider]:
    """The face and the connector on one clock the test moves."""
    clock = ManualClock()
    api = WechatpayApi(keys(), SimulatedProvider("wechatpay_face", SimulatorSettings(), clock))
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return clock, api, build(spec(transport=transport), clock)


def test_a_payment_code_still_unconfirmed_after_30s_is_reversed_and_never_charged() -> None:
    clock, api, wechat = clocked()
    number = mapping.out_trade_no(KEY)
    asked = QueryRequest(KEY, "pay_1")

    async def go() -> list[tuple[ProviderOutcome, str | None]]:
        seen = [await wechat.authorize(charge(token="sim_3ds"))]  # USERPAYING
        clock.advance(29)
        seen.append(await wechat.query(asked))  # the buyer may still enter the password
        clock.advance(1)
        seen.append(await wechat.query(asked))  # no clear result in 30 s: reversed
        seen.append(await wechat.query(asked))
        return [(r.outcome, r.raw_code) for r in seen]

    assert asyncio.run(go()) == [
        (ProviderOutcome.PENDING, "USERPAYING"),
        (ProviderOutcome.PENDING, "USERPAYING"),
        (ProviderOutcome.DECLINED, "REVOKED"),
        (ProviderOutcome.DECLINED, "REVOKED"),  # WeChat Pay's trade_state from now on
    ]
    path = f"/v3/pay/transactions/out-trade-no/{number}"
    assert api.calls[1:] == [f"GET {path}", f"GET {path}", f"POST {path}/reverse", f"GET {path}"]
    assert not api.trades.buyer_confirms(number)  # the password entered now pays nothing
    assert api.channel.ledger.charged(number) == []


def test_another_process_times_a_payment_code_from_when_it_was_sent() -> None:
    """A worker process that did not send the order reverses it 30 s after it was sent
    (the attempt's creation, carried by the query), not 30 s after it first asked."""
    clock, api, wechat = clocked()
    worker = build(spec(transport=httpx.ASGITransport(app=api, raise_app_exceptions=False)), clock)
    number = mapping.out_trade_no(KEY)
    sent = clock.now()

    async def go() -> list[tuple[ProviderOutcome, str | None]]:
        await wechat.authorize(charge(token="sim_3ds"))  # USERPAYING, in the API process
        clock.advance(20)
        early = await worker.query(QueryRequest(KEY, "pay_1", sent_at=sent))
        clock.advance(10)
        late = await worker.query(QueryRequest(KEY, "pay_1", sent_at=sent))
        return [(r.outcome, r.raw_code) for r in (early, late)]

    assert asyncio.run(go()) == [
        (ProviderOutcome.PENDING, "USERPAYING"),
        (ProviderOutcome.DECLINED, "REVOKED"),  # 30 s after sending, 10 s after it first asked
    ]
    assert api.channel.ledger.charged(number) == []


def test_a_payment_code_paid_but_never_confirmed_by_a_query_is_reversed_and_paid_back() -> None:
    clock, api, wechat = clocked()
    number = mapping.out_trade_no(KEY)

    async def go() -> tuple[ProviderOutcome, str | None]:
        await wechat.authorize(charge(token="sim_3ds"))
        assert api.trades.buyer_confirms(number)  # paid on the phone...
        api.failing_queries = True  # ...but no query can say so
        clock.advance(10)
        unknown = await wechat.query(QueryRequest(KEY, "pay_1"))
        assert (unknown.outcome, unknown.raw_code) == (ProviderOutcome.ERROR, "SYSTEM_ERROR")
        clock.advance(20)
        reversed_ = await wechat.query(QueryRequest(KEY, "pay_1"))
        return reversed_.outcome, reversed_.raw_code

    assert asyncio.run(go()) == (ProviderOutcome.DECLINED, "REVOKED")
    (paid,) = api.channel.ledger.charged(number)
    assert paid.refunded == paid.amount.minor  # WeChat Pay paid the buyer back in full
