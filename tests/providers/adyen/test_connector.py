"""The Adyen connector against the simulator's Adyen Checkout face, in-process: what each
call sends, what each answer becomes, and that nothing unreadable is believed."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from paymend.domain.money import Money
from paymend.engine.clock import SystemClock
from paymend.providers.adyen import build, mapping
from paymend.providers.base import (
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    QueryRequest,
    RefundRequest,
)
from paymend.sim.adyen_checkout import FaceKeys
from tests.helpers import WAIT_S
from tests.providers.adyen.face import BASE, connector, face, spec

AMOUNT = Money(1999, "EUR")


def charge(key: str, token: str | None = "sim_approve", **metadata: str) -> ChargeRequest:
    return ChargeRequest(key, "pay_1", AMOUNT, "card", token=token, metadata=metadata)


def test_a_payment_is_authorised_once_under_its_idempotency_key() -> None:
    checkout = face()
    adyen = connector(checkout)

    async def go() -> None:
        paid = await adyen.authorize(charge("att_1"))
        assert (paid.outcome, paid.raw_code) == (ProviderOutcome.SUCCEEDED, "Authorised")
        assert paid.reference
        again = await adyen.authorize(charge("att_1"))  # the same key: the same payment
        assert again.reference == paid.reference
        queried = await adyen.query(QueryRequest("att_1", "pay_1"))  # nothing kept: settled
        assert queried.outcome is ProviderOutcome.PENDING

    asyncio.run(go())
    assert len(checkout.channel.ledger.charged("att_1")) == 1


def test_encrypted_card_fields_go_as_the_payment_method() -> None:
    checkout = face()
    token = json.dumps({"type": "scheme", "encryptedCardNumber": "sim_approve",
                        "encryptedSecurityCode": "test_737"})  # fmt: skip
    assert asyncio.run(connector(checkout).authorize(charge("att_1", token))).outcome is (
        ProviderOutcome.SUCCEEDED
    )
    bad = asyncio.run(connector(checkout).authorize(charge("att_2", "{not json")))
    assert (bad.outcome, bad.raw_code) == (ProviderOutcome.ERROR, "100")
    assert checkout.calls == ["/v71/payments"]  # the bad token was never sent


def test_a_refusal_keeps_its_reason_and_code() -> None:
    result = asyncio.run(
        connector(face()).authorize(charge("att_1", "sim_decline_insufficient_funds"))
    )
    assert (result.outcome, result.raw_code) == (ProviderOutcome.DECLINED, "12")
    assert result.raw_message == (
        "resultCode=Refused; refusalReason=Not enough balance; refusalReasonCode=12"
    )


def test_3d_secure_answers_adyens_action_and_completes_through_details() -> None:
    checkout = face()
    adyen = connector(checkout)
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=checkout), base_url=BASE, timeout=WAIT_S
    )

    async def go() -> None:
        held = await adyen.authorize(charge("att_1", "sim_3ds"))
        assert (held.outcome, held.raw_code) == (ProviderOutcome.REQUIRES_ACTION, "RedirectShopper")
        action = held.raw["next_action"]
        assert action == {"type": "redirect", "url": f"{BASE}/sim/3ds/att_1"}
        unfinished = await adyen.confirm(QueryRequest("att_1", "pay_1"))  # no details yet
        assert unfinished.outcome is ProviderOutcome.REQUIRES_ACTION
        back = await browser.get(action["url"])  # the shopper passes, is sent back
        assert back.status_code == 302
        location = httpx.URL(back.headers["location"])
        assert str(location).startswith("https://shop.example.com/back?redirectResult=")
        result = location.params["redirectResult"]
        forged = await adyen.confirm(QueryRequest("att_1", "pay_1", {"redirectResult": "x"}))
        assert (forged.outcome, forged.raw_code) == (ProviderOutcome.ERROR, "00_422")
        done = await adyen.confirm(QueryRequest("att_1", "pay_1", {"redirectResult": result}))
        assert (done.outcome, done.raw_code) == (ProviderOutcome.SUCCEEDED, "Authorised")

    asyncio.run(go())
    assert checkout.calls[-1] == "/v71/payments/details"
    assert len(checkout.channel.ledger.charged("att_1")) == 1


def test_3d_secure_in_the_page_is_an_sdk_action_completed_by_its_result() -> None:
    checkout = face()
    checkout.payments.native_3ds = True
    adyen = connector(checkout)
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=checkout), base_url=BASE, timeout=WAIT_S
    )

    async def go() -> None:
        held = await adyen.authorize(charge("att_1", "sim_3ds"))
        assert held.raw_code == "ChallengeShopper"
        action = held.raw["next_action"]
        assert (action["type"], action["sdk"]) == ("sdk", "adyen_checkout")
        adyen_action = json.loads(action["parameters"])
        assert (adyen_action["type"], adyen_action["subtype"]) == ("threeDS2", "challenge")
        assert "url" not in action  # nothing to redirect to: Drop-in's handleAction does it
        challenge = await browser.post("/sim/3ds2/att_1")  # the component, in the page
        three_ds = challenge.json()["threeDSResult"]
        done = await adyen.confirm(QueryRequest("att_1", "pay_1", {"threeDSResult": three_ds}))
        assert done.outcome is ProviderOutcome.SUCCEEDED

    asyncio.run(go())


def test_a_lost_answer_is_found_by_repeating_the_request() -> None:
    checkout = face()
    adyen = connector(checkout)

    async def go() -> None:
        # in-process the dropped line reads as a cut answer (on a socket: a reset);
        # either way it is an unknown outcome, never a failure
        lost = await adyen.authorize(charge("att_1", "sim_lost_response"))
        assert (lost.outcome, lost.raw_code) == (ProviderOutcome.ERROR, "RESPONSE_UNREADABLE")
        found = await adyen.query(QueryRequest("att_1", "pay_1"))
        assert (found.outcome, found.raw_code) == (ProviderOutcome.SUCCEEDED, "Authorised")

    asyncio.run(go())
    assert len(checkout.channel.ledger.charged("att_1")) == 1
    assert checkout.calls == ["/v71/payments", "/v71/payments"]


def test_a_repeat_while_the_first_is_in_flight_is_a_conflict() -> None:
    checkout = face(hang_s=30)
    adyen = connector(checkout)

    async def go() -> None:
        first = asyncio.create_task(adyen.authorize(charge("att_1", "sim_timeout")))
        while "att_1" not in checkout.in_flight:
            await asyncio.sleep(0)
        repeat = await adyen.query(QueryRequest("att_1", "pay_1"))
        assert (repeat.outcome, repeat.raw_code) == (ProviderOutcome.ERROR, "704")
        first.cancel()  # the caller gives up, as the engine does at its timeout
        with pytest.raises(asyncio.CancelledError):
            await first
        checkout.release()

    asyncio.run(go())
    assert not checkout.channel.ledger.all_charges()


def test_a_refund_is_received_under_its_idempotency_key() -> None:
    checkout = face()
    adyen = connector(checkout)

    async def go() -> None:
        paid = await adyen.authorize(charge("att_1"))
        assert paid.reference is not None
        part = RefundRequest("rf_1", paid.reference, Money(999, "EUR"))
        first = await adyen.refund(part)
        # received: pending until the REFUND webhook
        assert (first.outcome, first.raw_code) == (ProviderOutcome.PENDING, "received")
        again = await adyen.refund(part)  # the same key: the same refund, not a second
        assert (again.outcome, again.reference) == (ProviderOutcome.PENDING, first.reference)
        too_much = await adyen.refund(RefundRequest("rf_2", paid.reference, Money(1001, "EUR")))
        assert too_much.outcome is ProviderOutcome.ERROR
        cancelled = await adyen.cancel("att_1")
        assert cancelled.raw_code == "received"

    asyncio.run(go())
    charge_row = checkout.channel.ledger.get("att_1")
    assert charge_row is not None and charge_row.refunded == AMOUNT.minor  # 999, then void


def test_amounts_go_in_adyens_minor_units() -> None:
    assert mapping.amount(Money(1999, "EUR")) == {"value": 1999, "currency": "EUR"}
    assert mapping.amount(Money(500, "JPY")) == {"value": 500, "currency": "JPY"}
    assert mapping.amount(Money(1000, "CLP")) == {"value": 100000, "currency": "CLP"}
    assert mapping.amount(Money(12345, "KWD")) == {"value": 12345, "currency": "KWD"}
    assert mapping.amount(Money(1200, "CVE")) == {"value": 12, "currency": "CVE"}
    with pytest.raises(ValueError):
        mapping.amount(Money(1250, "CVE"))
    assert mapping.money({"value": 100000, "currency": "CLP"}) == Money(1000, "CLP")
    assert mapping.money({"value": 101, "currency": "CLP"}) is None  # not a whole peso
    assert mapping.money({"value": "1999", "currency": "EUR"}) is None


def test_a_wrong_api_key_is_a_configuration_failure_not_a_crash() -> None:
    checkout = face()
    creds = {**FaceKeys.generate().credentials(), "hmac_key": checkout.keys.hmac_key}
    adyen = build(
        spec(transport=httpx.ASGITransport(app=checkout), credentials=creds), SystemClock()
    )
    result = asyncio.run(adyen.authorize(charge("att_1")))
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "000")
    assert result.raw_message is not None and result.raw_message.startswith("http=401")
    check = asyncio.run(adyen.check())
    assert not check.ok and "http=401" in check.detail
    other = build(
        spec(transport=httpx.ASGITransport(app=checkout), merchant_account="Elsewhere"),
        SystemClock(),
    )
    assert asyncio.run(other.authorize(charge("att_2"))).raw_code == "010"
    assert not checkout.channel.ledger.all_charges()


@pytest.mark.parametrize("status", [200, 502, 504])
def test_an_unreadable_answer_is_an_unknown_outcome(status: int) -> None:
    # a 502 or 504 in front of Adyen may come after the request went through
    async def garbage(scope: object, receive: object, send: object) -> None:
        assert callable(send)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"<html>gateway</html>"})

    adyen = build(spec(transport=httpx.ASGITransport(app=garbage)), SystemClock())
    result = asyncio.run(adyen.authorize(charge("att_1")))
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "RESPONSE_UNREADABLE")
    assert mapping.UNTRUSTED.labels("adyen_eu", "RESPONSE_UNREADABLE")._value.get() >= 1


def test_the_health_check_lists_payment_methods() -> None:
    check = asyncio.run(connector(face()).check())
    assert check.ok and "1 payment methods" in check.detail
    down = build(spec(base_url="http://127.0.0.1:9"), SystemClock())
    refused = asyncio.run(down.check())
    assert not refused.ok and "CONNECTION_REFUSED" in refused.detail


def test_an_outage_is_a_refused_call() -> None:
    adyen = connector(face(outage=True))
    with pytest.raises(ProviderConnectionError) as refused:
        asyncio.run(adyen.authorize(charge("att_1")))
    assert (refused.value.raw_code, refused.value.sent) == ("CONNECTION_REFUSED", False)


def test_the_settlement_report_lists_payments_and_refunds() -> None:
    checkout = face()
    adyen = connector(checkout)

    async def go() -> None:
        one = await adyen.authorize(charge("att_1"))
        await adyen.authorize(charge("att_2"))
        await adyen.authorize(charge("att_3", "sim_decline_do_not_honor"))
        assert one.reference is not None
        await adyen.refund(RefundRequest("rf_1", one.reference, Money(500, "EUR")))

    asyncio.run(go())
    lines = {ln.idempotency_key: ln for ln in asyncio.run(adyen.settlements())}
    assert set(lines) == {"att_1", "att_2"}
    assert (lines["att_1"].amount, lines["att_1"].refunded) == (AMOUNT, 500)
    assert lines["att_2"].refunded == 0
