"""The Alipay connector against the simulator's Alipay gateway face, in-process: what
each method sends, what each answer becomes, and that nothing untrusted is believed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paymend.domain.money import Money
from paymend.engine.clock import SystemClock
from paymend.providers.alipay import AlipayProvider, build, mapping
from paymend.providers.base import (
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
    RefundRequest,
)
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.sim.alipay_gateway import AlipayGateway, GatewayKeys
from tests.helpers import WAIT_S, ManualClock
from tests.providers.alipay.face import connector, face, keys, spec

AMOUNT = Money(1999, "CNY")


def charge(key: str, token: str | None = "sim_approve", **metadata: str) -> ChargeRequest:
    return ChargeRequest(key, "pay_1", AMOUNT, "alipay", token=token, metadata=metadata)


def test_a_payment_code_is_paid_and_queried_under_its_out_trade_no() -> None:
    gateway = face()
    alipay = connector(gateway)

    async def go() -> None:
        paid = await alipay.authorize(charge("att_1"))
        assert paid.outcome is ProviderOutcome.SUCCEEDED and paid.reference
        again = await alipay.authorize(charge("att_1"))  # a repeat finds the same trade
        assert again.reference == paid.reference
        queried = await alipay.query(QueryRequest("att_1", "pay_1"))
        assert queried.outcome is ProviderOutcome.SUCCEEDED
        assert (queried.raw_code, queried.reference) == ("TRADE_SUCCESS", paid.reference)
        missing = await alipay.query(QueryRequest("att_2", "pay_1"))
        assert (missing.outcome, missing.raw_code) == (ProviderOutcome.NOT_FOUND, mapping.NOT_EXIST)

    asyncio.run(go())
    assert len(gateway.channel.ledger.charged("att_1")) == 1
    assert gateway.calls == ["alipay.trade.pay"] * 2 + ["alipay.trade.query"] * 2


def test_a_decline_keeps_code_sub_code_and_sub_msg() -> None:
    alipay = connector(face())
    result = asyncio.run(alipay.authorize(charge("att_1", "sim_decline_insufficient_funds")))
    assert result.outcome is ProviderOutcome.DECLINED
    assert result.raw_code == "ACQ.BUYER_BALANCE_NOT_ENOUGH"
    assert result.raw_message is not None
    assert result.raw_message.startswith("code=40004; msg=Business Failed; sub_code=")


def test_the_amount_is_sent_as_exact_yuan() -> None:
    gateway = face()
    alipay = connector(gateway)
    request = ChargeRequest("att_9", "pay_9", Money(1, "CNY"), "alipay", token="sim_approve")
    asyncio.run(alipay.authorize(request))
    assert gateway.channel.ledger.charged("att_9")[0].amount == Money(1, "CNY")
    assert mapping.yuan(Money(123456789, "CNY")) == "1234567.89"
    assert mapping.fen("0.10") == Money(10, "CNY")
    with pytest.raises(ValueError):
        mapping.yuan(Money(100, "USD"))


def test_qr_and_redirect_flows_answer_the_next_action() -> None:
    gateway = face()
    alipay = connector(gateway)
    qr = asyncio.run(alipay.authorize(charge("att_qr", None)))
    assert qr.outcome is ProviderOutcome.REQUIRES_ACTION and qr.raw_code == "WAIT_BUYER_PAY"
    assert qr.raw["next_action"]["type"] == "scan_qr_code"
    assert qr.raw["next_action"]["url"].startswith("https://qr.alipay.com/")

    page = asyncio.run(alipay.authorize(charge("att_page", None, alipay_flow="page")))
    url = page.raw["next_action"]["url"]
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["method"] == "alipay.trade.page.pay"
    assert json.loads(params["biz_content"])["total_amount"] == "19.99"
    assert "att_page" not in gateway.trades.waiting  # nothing was called: the buyer goes there


def test_a_refund_is_idempotent_under_its_out_request_no() -> None:
    gateway = face()
    alipay = connector(gateway)

    async def go() -> None:
        paid = await alipay.authorize(charge("att_1"))
        assert paid.reference is not None
        part = RefundRequest("rf_1", paid.reference, Money(999, "CNY"))
        assert (await alipay.refund(part)).outcome is ProviderOutcome.SUCCEEDED
        assert (await alipay.refund(part)).outcome is ProviderOutcome.SUCCEEDED  # same key
        too_much = RefundRequest("rf_2", paid.reference, Money(1001, "CNY"))
        assert (await alipay.refund(too_much)).outcome is ProviderOutcome.DECLINED

    asyncio.run(go())
    assert gateway.channel.ledger.get("att_1").refunded == 999  # type: ignore[union-attr]


def test_an_answer_signed_by_another_key_is_an_unknown_outcome() -> None:
    gateway = face()
    other = GatewayKeys.generate()
    creds = {
        **gateway.keys.credentials(),
        "alipay_public_key": other.credentials()["alipay_public_key"],
    }
    transport = httpx.ASGITransport(app=gateway)
    alipay = build(spec(transport=transport, credentials=creds), SystemClock())
    result = asyncio.run(alipay.authorize(charge("att_1")))
    assert (result.outcome, result.raw_code) == (
        ProviderOutcome.ERROR,
        "RESPONSE_SIGNATURE_INVALID",
    )
    assert mapping.UNTRUSTED.labels("alipay_cn", "RESPONSE_SIGNATURE_INVALID")._value.get() >= 1
    assert gateway.channel.ledger.charged("att_1")  # it did charge: only a query can tell


def test_wrong_credentials_are_a_gateway_refusal_not_a_crash() -> None:
    gateway = face()
    other = GatewayKeys.generate()
    creds = {
        **gateway.keys.credentials(),
        "app_private_key": other.credentials()["app_private_key"],
    }
    alipay = build(
        spec(transport=httpx.ASGITransport(app=gateway), credentials=creds), SystemClock()
    )
    result = asyncio.run(alipay.authorize(charge("att_1")))
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "isv.invalid-signature")
    wrong_app = build(
        spec(transport=httpx.ASGITransport(app=gateway), app_id="2021999999999999"), SystemClock()
    )
    assert asyncio.run(wrong_app.authorize(charge("att_2"))).raw_code == "isv.invalid-app-id"
    check = asyncio.run(wrong_app.check())
    assert not check.ok and "isv.invalid-app-id" in check.detail
    assert not gateway.channel.ledger.all_charges()


def test_the_health_check_proves_keys_and_reachability() -> None:
    check = asyncio.run(connector(face()).check())
    assert check.ok, check.detail
    assert "ACQ.TRADE_NOT_EXIST" in check.detail
    down = build(spec(base_url="http://127.0.0.1:9/gateway.do"), SystemClock())
    refused = asyncio.run(down.check())
    assert not refused.ok and "CONNECTION_REFUSED" in refused.detail


def test_an_outage_is_a_refused_call() -> None:
    alipay = connector(face(outage=True))
    with pytest.raises(ProviderConnectionError) as refused:
        asyncio.run(alipay.authorize(charge("att_1")))
    assert (refused.value.raw_code, refused.value.sent) == ("CONNECTION_REFUSED", False)


def test_the_daily_bill_lists_trades_and_refunds() -> None:
    gateway = face()
    alipay = connector(gateway)

    async def go() -> None:
        one = await alipay.authorize(charge("att_1"))
        await alipay.authorize(charge("att_2"))
        assert one.reference is not None
        await alipay.refund(RefundRequest("rf_1", one.reference, Money(500, "CNY")))

    asyncio.run(go())
    assert alipay.settled_between is None
    lines = {ln.idempotency_key: ln for ln in asyncio.run(alipay.settlements())}
    assert alipay.settled_between is not None
    start, end = alipay.settled_between
    assert start <= SystemClock().now() < end and (end - start).days == 1  # today, Beijing
    assert set(lines) == {"att_1", "att_2"}
    assert (lines["att_1"].amount, lines["att_1"].refunded) == (AMOUNT, 500)
    assert lines["att_2"].refunded == 0


def clocked(**options: Any) -> tuple[ManualClock, AlipayGateway, AlipayProvider, httpx.AsyncClient]:
    """The gateway face, the connector and a buyer's browser on one clock the test moves."""
    clock = ManualClock()
    gateway = AlipayGateway(keys(), SimulatedProvider("alipay_face", SimulatorSettings(), clock))
    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    alipay = build(spec(transport=transport, **options), clock)
    return clock, gateway, alipay, httpx.AsyncClient(transport=transport, timeout=WAIT_S)


def test_a_cashier_page_expires_with_the_payment_so_an_old_url_charges_nothing() -> None:
    clock, gateway, alipay, browser = clocked()
    asked = QueryRequest("att_page", "pay_1")

    async def go() -> tuple[str, str, ProviderResult, str, ProviderResult]:
        page = await alipay.authorize(charge("att_page", None, alipay_flow="wap"))
        url = page.raw["next_action"]["url"]
        biz = json.loads(dict(parse_qsl(urlsplit(url).query))["biz_content"])
        clock.advance(301)  # the payment's deadline (300 s without one given) passed
        opened = (await browser.get(url)).text  # the customer opens the old URL now
        paid = await browser.post("http://alipay.test/sim/pay/att_page")
        return biz["time_expire"], opened, await alipay.query(asked), paid.text, page

    expire, opened, queried, paid, page = asyncio.run(go())
    made = mapping.beijing_time(ManualClock().now() + timedelta(seconds=300))
    assert expire == made  # yyyy-MM-dd HH:mm:ss, Beijing time
    assert "ACQ.TRADE_HAS_CLOSE" in opened and paid == "no such trade"
    assert (queried.outcome, queried.raw_code) == (ProviderOutcome.NOT_FOUND, mapping.NOT_EXIST)
    assert gateway.channel.ledger.get("att_page") is None  # nothing was charged
    assert page.outcome is ProviderOutcome.REQUIRES_ACTION


def test_a_cashier_page_opened_in_time_closes_unpaid_at_the_payments_deadline() -> None:
    clock, gateway, alipay, browser = clocked()
    deadline = ManualClock().now() + timedelta(seconds=120)
    asked = QueryRequest("att_late", "pay_1")

    async def go() -> tuple[str, ProviderResult, ProviderResult, str]:
        page = await alipay.authorize(
            replace(charge("att_late", None, alipay_flow="page"), pay_by=deadline)
        )
        url = page.raw["next_action"]["url"]
        await browser.get(url)  # opened in time: the trade waits for the buyer
        before = await alipay.query(asked)
        clock.advance(120)
        after = await alipay.query(asked)
        paid = await browser.post("http://alipay.test/sim/pay/att_late")  # too late to pay
        expire = json.loads(dict(parse_qsl(urlsplit(url).query))["biz_content"])["time_expire"]
        return expire, before, after, paid.text

    expire, before, after, paid = asyncio.run(go())
    assert expire == mapping.beijing_time(deadline)  # the payment's own deadline
    assert (before.outcome, before.raw_code) == (ProviderOutcome.PENDING, "WAIT_BUYER_PAY")
    assert (after.outcome, after.raw_code) == (ProviderOutcome.DECLINED, "TRADE_CLOSED")
    assert paid == "no such trade"
    assert gateway.channel.ledger.get("att_late") is None
