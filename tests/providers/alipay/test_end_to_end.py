"""Alipay end to end, on SQLite and PostgreSQL: paymend's real HTTP API, the real Alipay
connector, and the simulator's Alipay gateway face on its own 127.0.0.1 port, speaking
Alipay's wire protocol with locally made keys. The face sends its signed notifications
to paymend's real notification endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from paymend.providers.alipay import mapping
from paymend.sim.alipay_gateway import AlipayGateway, GatewayKeys
from tests.helpers import WAIT_S, count_rows
from tests.providers.alipay.face import face, keys
from tests.providers.harness import PATIENT, Connected, connected

BODY: dict[str, Any] = {
    "amount": 1999,
    "currency": "CNY",
    "method": "alipay",
    "order_id": "order-1",
    "payment_token": "sim_approve",
    "customer": {"id": "c-1", "locale": "zh-CN"},
}
NOTIFY = "/v1/providers/alipay_cn/notifications"


def trade(attempt_id: str) -> str:
    """The attempt's out_trade_no at Alipay: its idempotency key, `paymend_<id>`."""
    return f"paymend_{attempt_id}"


class Setup(Connected):
    @property
    def gateway(self) -> AlipayGateway:
        gateway: AlipayGateway = self.face
        return gateway

    @property
    def api(self) -> httpx.Client:
        return self.client

    def notify(self, key: str) -> httpx.Response | None:
        return asyncio.run(self.gateway.notify(key))

    def post_form(self, form: bytes) -> httpx.Response:
        return self.post_notification(form, {"content-type": "application/x-www-form-urlencoded"})


@contextlib.contextmanager
def alipay_setup(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    fallback: bool = False,
    wrong_key: bool = False,
    engine: dict[str, Any] | None = None,
    **faults: Any,
) -> Iterator[Setup]:
    credentials = keys().credentials()
    if wrong_key:  # a private key Alipay does not know for this app
        credentials["app_private_key"] = GatewayKeys.generate().credentials()["app_private_key"]

    def options(face_url: str, notify_url: str) -> dict[str, Any]:
        return {
            "type": "alipay",
            "app_id": keys().app_id,
            "base_url": f"{face_url}/gateway.do",
            "notify_url": notify_url,
            "bill_days": 1,
        }

    with connected(
        db_url,
        monkeypatch,
        channel="alipay_cn",
        options=options,
        credentials=credentials,
        body=BODY,
        face=face(**faults),
        fallback="alipay" if fallback else None,
        engine=engine,
    ) as c:
        yield Setup(**vars(c))


def test_a_payment_succeeds(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-ok")
        assert payment["status"] == "succeeded"
        (attempt,) = payment["attempts"]
        assert attempt["provider"] == "alipay_cn" and attempt["raw_code"] == "10000"
        (charge,) = s.gateway.channel.ledger.charged(trade(attempt["id"]))
        assert charge.amount.minor == 1999


def test_a_decline_says_why_in_the_customers_words(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_decline_insufficient_funds", "order-poor")
        assert payment["status"] == "failed"
        failure = payment["failure"]
        assert failure["code"] == "insufficient_funds"
        assert failure["raw_code"] == "ACQ.BUYER_BALANCE_NOT_ENOUGH"
        assert "sub_msg=" in failure["raw_message"]
        assert failure["locale"] == "zh-CN" and failure["message"]
        assert payment["customer_message"]["title"]
        assert not s.gateway.channel.ledger.charged(trade(payment["attempts"][0]["id"]))


def test_a_timeout_that_charged_ends_succeeded_after_a_query(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_timeout_charged", "order-slow")
        assert payment["status"] == "succeeded"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "TIMEOUT"  # the call's own story, then the query's
        assert len(s.gateway.channel.ledger.charged(trade(attempt["id"]))) == 1
        assert s.gateway.calls == ["alipay.trade.pay", "alipay.trade.query"]


def test_a_timeout_that_charged_ends_succeeded_after_a_notification(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        s.gateway.failing_queries = True  # only the notification can tell
        payment = s.pay("sim_timeout_charged", "order-slow")
        assert payment["status"] == "processing"
        (attempt,) = payment["attempts"]
        assert attempt["status"] == "unknown"

        answer = s.notify(trade(attempt["id"]))
        assert answer is not None
        assert (answer.status_code, answer.text) == (200, "success")
        assert answer.headers["content-type"].startswith("text/plain")
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"
        assert settled["attempts"][0]["status"] == "succeeded"
        assert len(s.gateway.channel.ledger.charged(trade(attempt["id"]))) == 1

        before = count_rows(s.server.runtime.store)
        again = s.notify(trade(attempt["id"]))  # Alipay resends: nothing changes
        assert again is not None and again.text == "success"
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"]) == settled


def test_a_notification_with_a_bad_signature_is_refused_and_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        s.gateway.failing_queries = True
        payment = s.pay("sim_timeout_charged", "order-forged")
        key = trade(payment["attempts"][0]["id"])
        form = dict(parse_qsl((s.gateway.notification(key) or b"").decode()))
        before = count_rows(s.server.runtime.store)

        tampered = urlencode({**form, "total_amount": "0.01"}).encode()
        refused = s.post_form(tampered)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "notification_not_verified"
        unsigned = urlencode({k: v for k, v in form.items() if k != "sign"}).encode()
        assert s.post_form(unsigned).status_code == 400
        assert s.post_form(b"\xff\xfe not a form").status_code == 400
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"])["status"] == "processing"

        elsewhere = httpx.post(
            s.server.url + "/v1/providers/nope/notifications", content=b"x", timeout=WAIT_S
        )
        assert elsewhere.status_code == 404
        assert elsewhere.json()["error"]["code"] == "channel_not_found"


def test_a_late_success_after_failover_is_reversed_and_refunded(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Alipay's query does not see the young trade: the attempt is taken as not charged,
    # the payment fails over and succeeds elsewhere; then Alipay's notification arrives
    with alipay_setup(db_url, monkeypatch, fallback=True, query_lag_s=3600) as s:
        payment = s.pay("sim_timeout_charged", "order-twice")
        assert payment["status"] == "succeeded"
        first, second = payment["attempts"]
        assert (first["provider"], second["provider"]) == ("alipay_cn", "sim_a")

        answer = s.notify(trade(first["id"]))
        assert answer is not None and answer.text == "success"
        attempts = s.payment(payment["id"])["attempts"]
        assert [a["status"] for a in attempts] == ["reversed", "succeeded"]
        s.drain_worker()  # the worker sends the refund
        (charge,) = s.gateway.channel.ledger.charged(trade(first["id"]))
        assert charge.refunded == charge.amount.minor  # the customer paid once


def test_a_qr_code_payment_waits_for_the_buyer_and_settles_by_notification(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        s.gateway.auto_notify = True
        body = {**BODY, "order_id": "order-qr"}
        del body["payment_token"]
        created = s.api.post("/v1/payments", json=body, headers={"Idempotency-Key": "qr"})
        assert created.status_code == 201, created.text
        payment = created.json()
        assert payment["status"] == "requires_action"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "WAIT_BUYER_PAY"
        action = payment["next_action"]
        assert (action["type"], action["provider"]) == ("scan_qr_code", "alipay_cn")
        assert action["url"].startswith("https://qr.alipay.com/")
        assert s.payment(payment["id"])["next_action"] == action

        paid = httpx.post(
            f"{s.face_url}/sim/pay/{trade(attempt['id'])}", timeout=WAIT_S
        )  # the buyer scans
        assert paid.status_code == 200
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"
        assert len(s.gateway.channel.ledger.charged(trade(attempt["id"]))) == 1


def test_a_redirect_payment_sends_the_customer_to_alipays_page(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = {"provider_timeout": "500ms", "checkout_deadline": "3s", "settle_within": "2m"}
    with alipay_setup(db_url, monkeypatch, engine=engine) as s:
        s.gateway.auto_notify = True
        body = {**BODY, "order_id": "order-page", "metadata": {"alipay_flow": "page"}}
        del body["payment_token"]
        payment = s.api.post("/v1/payments", json=body).json()
        assert payment["status"] == "requires_action"
        action = payment["next_action"]
        assert action["type"] == "redirect"
        assert action["url"].startswith(f"{s.face_url}/gateway.do?")
        assert "method=alipay.trade.page.pay" in action["url"]
        # the page expires with the payment: its deadline, the engine's settle_within
        biz = json.loads(dict(parse_qsl(urlsplit(action["url"]).query))["biz_content"])
        created = datetime.fromisoformat(payment["created_at"])
        assert biz["time_expire"] == mapping.beijing_time(created + timedelta(seconds=120))

        page = httpx.get(
            action["url"], timeout=WAIT_S
        )  # the customer's browser on Alipay's cashier page
        assert page.status_code == 200 and "/sim/pay/" in page.text
        key = trade(payment["attempts"][0]["id"])
        assert httpx.post(f"{s.face_url}/sim/pay/{key}", timeout=WAIT_S).status_code == 200
        assert s.payment(payment["id"])["status"] == "succeeded"


def test_wrong_credentials_fail_over_and_alert_ops(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch, fallback=True, wrong_key=True) as s:
        payment = s.pay("sim_approve", "order-key")
        assert payment["status"] == "succeeded"
        first, second = payment["attempts"]
        assert (first["raw_code"], first["unified_code"]) == (
            "isv.invalid-signature",
            "configuration_error",
        )
        assert first["decision"] == "failover" and second["provider"] == "sim_a"
        assert not s.gateway.channel.ledger.all_charges()


def test_a_payment_is_refunded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-back")
        pid = payment["id"]
        refund = s.api.post(
            f"/v1/payments/{pid}/refunds", json={"amount": 500}, headers={"Idempotency-Key": "r1"}
        )
        assert refund.status_code == 201, refund.text
        assert refund.json()["status"] == "succeeded"
        (charge,) = s.gateway.channel.ledger.charged(trade(payment["attempts"][0]["id"]))
        assert charge.refunded == 500
        assert "alipay.trade.refund" in s.gateway.calls


def test_reconciliation_finds_a_mismatch_in_the_alipay_bill(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with alipay_setup(db_url, monkeypatch) as s:
        right = s.pay("sim_approve", "order-a")
        wrong = s.pay("sim_approve", "order-b")
        missing = s.pay("sim_approve", "order-c")
        trade_no = wrong["attempts"][0]["provider_reference"]
        assert trade_no
        s.gateway.bill_amounts[trade_no] = "18.88"  # the bill says otherwise
        s.gateway.bill_omits.add(missing["attempts"][0]["provider_reference"])  # or nothing

        code, report = s.reconcile(tmp_path)
        assert code == 1, report
        assert report["providers"] == ["alipay_cn"] and report["charges_compared"] == 2
        amount, unsettled = sorted(report["mismatches"], key=lambda m: m["kind"])
        assert unsettled["kind"] == "recorded_not_charged"
        assert unsettled["payment_id"] == missing["id"]
        mismatch = amount
        assert mismatch["kind"] == "amount" and mismatch["reference"] == trade_no
        assert mismatch["payment_id"] == wrong["id"] != right["id"]
        assert (mismatch["store"], mismatch["provider_says"]) == ("amount 1999", "charged 1888")


def test_cancel_closes_the_qr_code_nobody_paid(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay(None, "order-qr-cancel")
        assert payment["status"] == "requires_action"
        key = trade(payment["attempts"][0]["id"])
        canceled = s.act(payment["id"], "cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        (attempt,) = canceled.json()["attempts"]
        assert attempt["status"] == "failed" and "TRADE_CLOSED" in attempt["reason"]
        assert s.gateway.calls[-1] == "alipay.trade.close"
        # the buyer scans the old code: Alipay will not take the money any more
        assert httpx.post(f"{s.face_url}/sim/pay/{key}", timeout=WAIT_S).status_code == 404
        assert not s.gateway.channel.ledger.charged(key)


def test_cancel_of_a_qr_code_paid_meanwhile_ends_succeeded(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay(None, "order-qr-paid")
        key = trade(payment["attempts"][0]["id"])
        assert (
            httpx.post(f"{s.face_url}/sim/pay/{key}", timeout=WAIT_S).status_code == 200
        )  # paid, untold
        refused = s.act(payment["id"], "cancel")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "payment_not_cancelable"
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"  # the charge is the payment, not lost
        assert settled["attempts"][0]["status"] == "succeeded"
        assert s.gateway.calls[-2:] == ["alipay.trade.close", "alipay.trade.query"]
        (charge,) = s.gateway.channel.ledger.charged(key)
        assert charge.refunded == 0


def test_cancel_before_the_cashier_page_was_opened(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay(None, "order-page-cancel", metadata={"alipay_flow": "page"})
        canceled = s.act(payment["id"], "cancel")
        assert canceled.json()["status"] == "canceled"
        (attempt,) = canceled.json()["attempts"]
        assert attempt["status"] == "failed" and "ACQ.TRADE_NOT_EXIST" in attempt["reason"]
        assert s.gateway.calls == ["alipay.trade.close"]


def test_cancel_closes_a_payment_code_the_buyer_is_still_confirming(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with alipay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay("sim_3ds", "order-code-cancel")  # 10003: confirming on the phone
        assert payment["status"] == "processing"
        (attempt,) = payment["attempts"]
        assert attempt["status"] == "unknown"
        canceled = s.act(payment["id"], "cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        assert canceled.json()["attempts"][0]["status"] == "failed"
        assert s.gateway.calls[-1] == "alipay.trade.close"
        key = trade(attempt["id"])
        closed = s.gateway.trades.query({"out_trade_no": key})
        assert closed["trade_status"] == "TRADE_CLOSED"
        assert not s.gateway.channel.ledger.charged(key)
