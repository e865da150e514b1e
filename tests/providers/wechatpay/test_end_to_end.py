"""WeChat Pay end to end, on SQLite and PostgreSQL: paymend's real HTTP API, the real
WeChat Pay connector, and the simulator's WeChat Pay v3 face on its own 127.0.0.1 port,
speaking API v3 with locally made keys. The face sends its signed, encrypted
notifications to paymend's real notification endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymend.providers.wechatpay import signing
from paymend.sim.wechatpay_api import MerchantKeys, WechatpayApi
from tests.helpers import WAIT_S, count_rows
from tests.providers.harness import PATIENT, Connected, connected
from tests.providers.wechatpay.face import face, keys

BODY: dict[str, Any] = {
    "amount": 1999,
    "currency": "CNY",
    "method": "wechat_pay",
    "order_id": "order-1",
    "payment_token": "sim_approve",
    "customer": {"id": "c-1", "locale": "zh-CN"},
}
NOTIFY = "/v1/providers/wechatpay_cn/notifications"
ACK = {"code": "SUCCESS", "message": "成功"}


class Setup(Connected):
    @property
    def api(self) -> WechatpayApi:
        api: WechatpayApi = self.face
        return api

    def notify(self, number: str) -> httpx.Response | None:
        return asyncio.run(self.api.notify(number))

    def post_signed(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        return self.post_notification(body, headers)


@contextlib.contextmanager
def wechatpay_setup(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    fallback: bool = False,
    wrong_key: bool = False,
    engine: dict[str, Any] | None = None,
    **faults: Any,
) -> Iterator[Setup]:
    api = face(**faults)
    credentials = keys().credentials()
    if wrong_key:  # a merchant key WeChat Pay does not know for this mchid
        credentials["mch_private_key"] = MerchantKeys.generate().credentials()["mch_private_key"]

    def options(face_url: str, notify_url: str) -> dict[str, Any]:
        api.notify_url = notify_url  # payment-code orders take no notify_url
        return {
            "type": "wechatpay",
            **keys().options(),
            "base_url": face_url,
            "notify_url": notify_url,
            "bill_days": 1,
        }

    with connected(
        db_url,
        monkeypatch,
        channel="wechatpay_cn",
        options=options,
        credentials=credentials,
        body=BODY,
        face=api,
        fallback="wechat_pay" if fallback else None,
        engine=engine,
    ) as c:
        yield Setup(**vars(c))


def test_a_payment_succeeds(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-ok")
        assert payment["status"] == "succeeded"
        (attempt,) = payment["attempts"]
        assert attempt["provider"] == "wechatpay_cn" and attempt["raw_code"] == "SUCCESS"
        (charge,) = s.api.channel.ledger.charged(attempt["id"])  # out_trade_no: its id
        assert charge.amount.minor == 1999
        assert attempt["provider_reference"] == charge.reference


def test_a_decline_says_why_in_the_customers_words(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_decline_insufficient_funds", "order-poor")
        assert payment["status"] == "failed"
        failure = payment["failure"]
        assert failure["code"] == "insufficient_funds"
        assert failure["raw_code"] == "NOT_ENOUGH"
        assert "HTTP 403; code=NOT_ENOUGH; message=" in failure["raw_message"]
        assert failure["locale"] == "zh-CN" and failure["message"]
        assert payment["customer_message"]["title"]
        assert not s.api.channel.ledger.charged(payment["attempts"][0]["id"])


def test_a_timeout_that_charged_ends_succeeded_after_a_query(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_timeout_charged", "order-slow")
        assert payment["status"] == "succeeded"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "TIMEOUT"  # the call's own story, then the query's
        assert len(s.api.channel.ledger.charged(attempt["id"])) == 1
        assert s.api.calls == [
            "POST /v3/pay/transactions/codepay",
            f"GET /v3/pay/transactions/out-trade-no/{attempt['id']}",
        ]


def test_a_timeout_that_charged_ends_succeeded_after_a_notification(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        s.api.failing_queries = True  # only the notification can tell
        payment = s.pay("sim_timeout_charged", "order-slow")
        assert payment["status"] == "processing"
        (attempt,) = payment["attempts"]
        assert attempt["status"] == "unknown"

        answer = s.notify(attempt["id"])
        assert answer is not None
        assert (answer.status_code, answer.json()) == (200, ACK)
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"
        assert settled["attempts"][0]["status"] == "succeeded"
        assert len(s.api.channel.ledger.charged(attempt["id"])) == 1

        before = count_rows(s.server.runtime.store)
        again = s.notify(attempt["id"])  # WeChat Pay resends: nothing changes
        assert again is not None and again.json() == ACK
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"]) == settled


def test_a_replayed_notification_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        s.api.failing_queries = True
        payment = s.pay("sim_timeout_charged", "order-replay")
        made = s.api.notification(payment["attempts"][0]["id"])
        assert made is not None
        headers, body = made
        assert s.post_signed(headers, body).json() == ACK
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"
        before = count_rows(s.server.runtime.store)
        replayed = s.post_signed(headers, body)  # the very same bytes and signature
        assert (replayed.status_code, replayed.json()) == (200, ACK)
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"]) == settled


def test_a_notification_with_a_bad_signature_is_refused_and_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        s.api.failing_queries = True
        payment = s.pay("sim_timeout_charged", "order-forged")
        made = s.api.notification(payment["attempts"][0]["id"])
        assert made is not None
        headers, body = made
        before = count_rows(s.server.runtime.store)

        document = json.loads(body)
        document["summary"] = "支付成功!"
        tampered = s.post_signed(headers, json.dumps(document).encode())
        assert tampered.status_code == 400
        assert tampered.json()["error"]["code"] == "notification_not_verified"
        unsigned = {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}
        assert s.post_signed(unsigned, body).status_code == 400
        other_key = {**headers, "Wechatpay-Serial": "PUB_KEY_ID_0100000000000000"}
        assert s.post_signed(other_key, body).status_code == 400
        assert s.post_signed(headers, b"\xff\xfe not json").status_code == 400
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"])["status"] == "processing"


def test_a_late_success_after_failover_is_reversed_and_refunded(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WeChat Pay's query does not see the young order: the attempt is taken as not
    # charged, the payment fails over and succeeds elsewhere; then the notification
    with wechatpay_setup(db_url, monkeypatch, fallback=True, query_lag_s=3600) as s:
        payment = s.pay("sim_timeout_charged", "order-twice")
        assert payment["status"] == "succeeded"
        first, second = payment["attempts"]
        assert (first["provider"], second["provider"]) == ("wechatpay_cn", "sim_a")

        answer = s.notify(first["id"])
        assert answer is not None and answer.json() == ACK
        attempts = s.payment(payment["id"])["attempts"]
        assert [a["status"] for a in attempts] == ["reversed", "succeeded"]
        s.drain_worker()  # the worker sends the refund
        (charge,) = s.api.channel.ledger.charged(first["id"])
        assert charge.refunded == charge.amount.minor  # the customer paid once


def test_a_native_payment_waits_for_the_buyer_and_settles_by_notification(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        s.api.auto_notify = True
        body = {**BODY, "order_id": "order-qr"}
        del body["payment_token"]
        created = s.client.post("/v1/payments", json=body, headers={"Idempotency-Key": "qr"})
        assert created.status_code == 201, created.text
        payment = created.json()
        assert payment["status"] == "requires_action"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "NOTPAY"
        action = payment["next_action"]
        assert (action["type"], action["provider"]) == ("scan_qr_code", "wechatpay_cn")
        assert action["url"].startswith("weixin://wxpay/bizpayurl?pr=")

        paid = httpx.post(
            f"{s.face_url}/sim/pay/{attempt['id']}", timeout=WAIT_S
        )  # the buyer scans
        assert paid.status_code == 200
        assert s.payment(payment["id"])["status"] == "succeeded"
        assert len(s.api.channel.ledger.charged(attempt["id"])) == 1


def test_wrong_credentials_fail_over_and_alert_ops(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch, fallback=True, wrong_key=True) as s:
        payment = s.pay("sim_approve", "order-key")
        assert payment["status"] == "succeeded"
        first, second = payment["attempts"]
        assert (first["raw_code"], first["unified_code"]) == ("SIGN_ERROR", "configuration_error")
        assert first["decision"] == "failover" and second["provider"] == "sim_a"
        assert not s.api.channel.ledger.all_charges()


def test_a_payment_is_refunded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-back")
        pid = payment["id"]
        refund = s.client.post(
            f"/v1/payments/{pid}/refunds", json={"amount": 500}, headers={"Idempotency-Key": "r1"}
        )
        assert refund.status_code == 201, refund.text
        assert refund.json()["status"] == "succeeded"
        (charge,) = s.api.channel.ledger.charged(payment["attempts"][0]["id"])
        assert charge.refunded == 500
        assert "POST /v3/refund/domestic/refunds" in s.api.calls


def test_reconciliation_finds_a_mismatch_in_the_trade_bill(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        right = s.pay("sim_approve", "order-a")
        wrong = s.pay("sim_approve", "order-b")
        missing = s.pay("sim_approve", "order-c")
        transaction_id = wrong["attempts"][0]["provider_reference"]
        assert transaction_id
        s.api.bill_amounts[transaction_id] = 1888  # the bill says otherwise
        s.api.bill_omits.add(missing["attempts"][0]["provider_reference"])  # or nothing

        code, report = s.reconcile(tmp_path)
        assert code == 1, report
        assert report["providers"] == ["wechatpay_cn"] and report["charges_compared"] == 2
        amount, unsettled = sorted(report["mismatches"], key=lambda m: m["kind"])
        assert unsettled["kind"] == "recorded_not_charged"
        assert unsettled["payment_id"] == missing["id"]
        assert amount["kind"] == "amount" and amount["reference"] == transaction_id
        assert amount["payment_id"] == wrong["id"] != right["id"]
        assert (amount["store"], amount["provider_says"]) == ("amount 1999", "charged 1888")


def test_cancel_closes_the_native_order_nobody_paid(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay(None, "order-native-cancel")
        assert payment["next_action"]["type"] == "scan_qr_code"
        number = payment["attempts"][0]["id"]
        canceled = s.act(payment["id"], "cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        assert canceled.json()["attempts"][0]["status"] == "failed"
        assert s.api.calls[-1] == f"POST /v3/pay/transactions/out-trade-no/{number}/close"
        # the buyer scans the old code: WeChat Pay will not take the money any more
        assert httpx.post(f"{s.face_url}/sim/pay/{number}", timeout=WAIT_S).status_code == 404
        assert not s.api.channel.ledger.charged(number)


def test_cancel_of_an_order_paid_meanwhile_ends_succeeded(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay(None, "order-native-paid")
        number = payment["attempts"][0]["id"]
        assert (
            httpx.post(f"{s.face_url}/sim/pay/{number}", timeout=WAIT_S).status_code == 200
        )  # untold
        refused = s.act(payment["id"], "cancel")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "payment_not_cancelable"
        assert s.payment(payment["id"])["status"] == "succeeded"
        assert s.api.calls[-2:] == [
            f"POST /v3/pay/transactions/out-trade-no/{number}/close",
            f"GET /v3/pay/transactions/out-trade-no/{number}",
        ]
        assert len(s.api.channel.ledger.charged(number)) == 1


def test_a_jsapi_payment_gives_the_checkout_weixinjsbridges_signed_parameters(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch) as s:
        s.api.auto_notify = True
        metadata = {"wechatpay_flow": "jsapi", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
        payment = s.pay(None, "order-jsapi", metadata=metadata)
        assert payment["status"] == "requires_action"
        action = payment["next_action"]
        assert (action["type"], action["sdk"], action["provider"]) == (
            "sdk",
            "wechat_jsapi",
            "wechatpay_cn",
        )
        p = action["parameters"]
        assert set(p) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
        assert p["appId"] == keys().appid and p["signType"] == "RSA"
        assert p["package"].startswith("prepay_id=")
        assert action["confirm_url"] is None  # WeChat Pay tells paymend itself
        signed = f"{p['appId']}\n{p['timeStamp']}\n{p['nonceStr']}\n{p['package']}\n"
        assert signing.verify(keys().merchant_private.public_key(), signed, p["paySign"])
        assert s.payment(payment["id"])["next_action"] == action

        number = payment["attempts"][0]["id"]
        assert (
            httpx.post(f"{s.face_url}/sim/pay/{number}", timeout=WAIT_S).status_code == 200
        )  # in WeChat
        assert s.payment(payment["id"])["status"] == "succeeded"


def test_cancel_leaves_a_payment_code_still_being_confirmed_unknown(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with wechatpay_setup(db_url, monkeypatch, engine=PATIENT) as s:
        payment = s.pay("sim_3ds", "order-code-cancel")  # USERPAYING: on the buyer's phone
        (attempt,) = payment["attempts"]
        assert attempt["status"] == "unknown"
        canceled = s.act(payment["id"], "cancel")
        assert canceled.json()["status"] == "canceled"
        # the close is refused and the query says the buyer is still paying: not taken
        # as unpaid (a charge that lands now is a late success, refunded)
        assert canceled.json()["attempts"][0]["status"] == "unknown"
        number = attempt["id"]
        assert s.api.calls[-2:] == [
            f"POST /v3/pay/transactions/out-trade-no/{number}/close",
            f"GET /v3/pay/transactions/out-trade-no/{number}",
        ]
