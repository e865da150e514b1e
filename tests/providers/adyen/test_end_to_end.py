"""Adyen end to end, on SQLite and PostgreSQL: paymend's real HTTP API, the real Adyen
connector, and the simulator's Adyen Checkout face on its own 127.0.0.1 port, speaking
Checkout v71 with a locally made API key. The face sends its HMAC-signed webhooks to
paymend's real notification endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymend.api.views import payment_json
from paymend.domain.money import Money
from paymend.sim.adyen_checkout import REPORT_PATH, AdyenCheckout, FaceKeys
from tests.helpers import WAIT_S, count_rows
from tests.providers.adyen.face import face, keys
from tests.providers.harness import PATIENT, Connected, connected

BODY: dict[str, Any] = {
    "amount": 1999,
    "currency": "EUR",
    "method": "card",
    "order_id": "order-1",
    "payment_token": "sim_approve",
    "customer": {"id": "c-1", "locale": "en"},
}
RETURN_URL = "https://shop.example.com/back"


def reference(attempt_id: str) -> str:
    """The attempt's `reference` at Adyen: its idempotency key."""
    return f"paymend-{attempt_id}"


class Setup(Connected):
    @property
    def checkout(self) -> AdyenCheckout:
        checkout: AdyenCheckout = self.face
        return checkout

    @property
    def api(self) -> httpx.Client:
        return self.client

    def notify(self, key: str) -> httpx.Response | None:
        return asyncio.run(self.checkout.notify(key))

    def post_json(self, body: bytes) -> httpx.Response:
        return self.post_notification(body, {"content-type": "application/json"})


@contextlib.contextmanager
def adyen_setup(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    fallback: bool = False,
    wrong_key: bool = False,
    failing_repeats: bool = False,
    engine: dict[str, Any] | None = None,
    **faults: Any,
) -> Iterator[Setup]:
    checkout = face(**faults)
    checkout.failing_repeats = failing_repeats  # only a webhook can tell
    credentials = keys().credentials()
    if wrong_key:  # an API key Adyen does not know
        credentials["api_key"] = FaceKeys.generate().api_key

    def options(face_url: str, notify_url: str) -> dict[str, Any]:
        checkout.webhook_url = notify_url  # as set in Adyen's Customer Area
        return {
            "type": "adyen",
            "merchant_account": keys().merchant_account,
            "base_url": face_url,
            "return_url": RETURN_URL,
            "report_url": face_url + REPORT_PATH,
            "currencies": ["EUR"],
        }

    with connected(
        db_url,
        monkeypatch,
        channel="adyen_eu",
        options=options,
        credentials=credentials,
        body=BODY,
        face=checkout,
        fallback="card" if fallback else None,
        engine=engine,
    ) as c:
        yield Setup(**vars(c))


def test_a_payment_succeeds(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-ok")
        assert payment["status"] == "succeeded"
        (attempt,) = payment["attempts"]
        assert attempt["provider"] == "adyen_eu" and attempt["raw_code"] == "Authorised"
        assert attempt["provider_reference"]
        (charge,) = s.checkout.channel.ledger.charged(reference(attempt["id"]))
        assert charge.amount == Money(1999, "EUR")


def test_a_refusal_says_why_in_the_customers_words(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_decline_insufficient_funds", "order-poor")
        assert payment["status"] == "failed"
        failure = payment["failure"]
        assert (failure["code"], failure["raw_code"]) == ("insufficient_funds", "12")
        assert "refusalReason=Not enough balance" in failure["raw_message"]
        assert failure["locale"] == "en" and failure["message"]
        assert payment["customer_message"]["title"]
        assert not s.checkout.channel.ledger.charged(reference(payment["attempts"][0]["id"]))


def test_a_timeout_that_charged_ends_succeeded_after_a_query(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_timeout_charged", "order-slow")
        assert payment["status"] == "succeeded"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "TIMEOUT"  # the call's own story, then the query's
        assert len(s.checkout.channel.ledger.charged(reference(attempt["id"]))) == 1
        # the query is the same request again, under the same Idempotency-Key
        assert s.checkout.calls == ["/v71/payments", "/v71/payments"]


def test_a_timeout_that_charged_ends_succeeded_after_a_notification(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch, failing_repeats=True) as s:
        payment = s.pay("sim_timeout_charged", "order-slow")
        assert payment["status"] == "processing"
        (attempt,) = payment["attempts"]
        assert attempt["status"] == "unknown"

        answer = s.notify(reference(attempt["id"]))
        assert answer is not None
        assert (answer.status_code, answer.text) == (200, "[accepted]")
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"
        assert settled["attempts"][0]["status"] == "succeeded"
        assert len(s.checkout.channel.ledger.charged(reference(attempt["id"]))) == 1

        before = count_rows(s.server.runtime.store)
        again = s.notify(reference(attempt["id"]))  # Adyen resends: nothing changes
        assert again is not None and again.text == "[accepted]"
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"]) == settled


def test_3d_secure_completes_through_confirm_with_the_redirect_result(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_3ds", "order-3ds")
        assert payment["status"] == "requires_action"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "RedirectShopper"
        action = payment["next_action"]
        assert (action["type"], action["provider"]) == ("redirect", "adyen_eu")
        assert action["url"] == f"{s.face_url}/sim/3ds/{reference(attempt['id'])}"

        back = httpx.get(
            action["url"], timeout=WAIT_S
        )  # the shopper's browser, sent back to the shop
        assert back.status_code == 302
        location = httpx.URL(back.headers["location"])
        assert str(location).startswith(RETURN_URL + "?redirectResult=")
        details = {"redirectResult": location.params["redirectResult"]}

        confirmed = s.act(payment["id"], "confirm", {"details": details})
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "succeeded"
        assert s.checkout.calls[-1] == "/v71/payments/details"
        assert len(s.checkout.channel.ledger.charged(reference(attempt["id"]))) == 1

        before = count_rows(s.server.runtime.store)
        answer = s.notify(reference(attempt["id"]))  # Adyen's AUTHORISATION: nothing new
        assert answer is not None and answer.text == "[accepted]"
        assert count_rows(s.server.runtime.store) == before


def test_a_confirm_with_details_nobody_asked_for_is_refused(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_3ds", "order-3ds-bad")
        wrong = s.act(payment["id"], "confirm", {"details": {"paRes": "x"}})
        assert wrong.status_code == 400, wrong.text
        assert s.payment(payment["id"])["status"] == "requires_action"
        assert "/v71/payments/details" not in s.checkout.calls


def test_3d_secure_in_the_page_is_an_sdk_action_for_drop_in(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        s.checkout.payments.native_3ds = True
        payment = s.pay("sim_3ds", "order-3ds2")
        assert payment["attempts"][0]["raw_code"] == "ChallengeShopper"
        action = payment["next_action"]
        assert (action["type"], action["sdk"], action["provider"]) == (
            "sdk",
            "adyen_checkout",
            "adyen_eu",
        )
        assert action["parameters"]["type"] == "threeDS2" and "url" not in action
        assert action["confirm_url"] == f"/v1/payments/{payment['id']}/confirm"
        # the ops API's rendering says what the payment waits for, without the parameters
        view = asyncio.run(s.server.runtime.service.get(payment["id"]))
        ops = payment_json(view)["next_action"]
        assert ops is not None and ops["type"] == "sdk" and ops.get("parameters") is None

        key = reference(payment["attempts"][0]["id"])
        result = httpx.post(f"{s.face_url}/sim/3ds2/{key}", timeout=WAIT_S).json()["threeDSResult"]
        confirmed = s.act(payment["id"], "confirm", {"details": {"threeDSResult": result}})
        assert confirmed.json()["status"] == "succeeded"
        assert len(s.checkout.channel.ledger.charged(key)) == 1


def test_cancel_closes_the_payment_waiting_for_the_shopper(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch, engine=PATIENT) as s:
        s.checkout.auto_notify = True
        payment = s.pay("sim_3ds", "order-3ds-cancel")
        canceled = s.act(payment["id"], "cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        assert "/v71/cancels" in s.checkout.calls
        key = reference(payment["attempts"][0]["id"])
        # the shopper comes back too late: Adyen will not take the payment any more
        assert httpx.get(payment["next_action"]["url"], timeout=WAIT_S).status_code == 404
        assert not s.checkout.channel.ledger.charged(key)


def test_a_notification_with_a_bad_hmac_is_refused_and_changes_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch, failing_repeats=True) as s:
        payment = s.pay("sim_timeout_charged", "order-forged")
        key = reference(payment["attempts"][0]["id"])
        webhook = json.loads(s.checkout.notification(key) or b"")
        item = webhook["notificationItems"][0]["NotificationRequestItem"]
        before = count_rows(s.server.runtime.store)

        item["amount"]["value"] = 1  # tampered after signing
        refused = s.post_json(json.dumps(webhook).encode())
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "notification_not_verified"
        del item["additionalData"]
        assert s.post_json(json.dumps(webhook).encode()).status_code == 400
        assert s.post_json(b"\xff\xfe not json").status_code == 400
        assert count_rows(s.server.runtime.store) == before
        assert s.payment(payment["id"])["status"] == "processing"


def test_wrong_credentials_fail_over_and_alert_ops(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch, fallback=True, wrong_key=True) as s:
        payment = s.pay("sim_approve", "order-key")
        assert payment["status"] == "succeeded"
        first, second = payment["attempts"]
        assert (first["raw_code"], first["unified_code"]) == ("000", "configuration_error")
        assert first["decision"] == "failover" and second["provider"] == "sim_a"
        assert not s.checkout.channel.ledger.all_charges()


def test_a_refund_is_settled_by_adyens_refund_webhook(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-back")
        pid = payment["id"]
        refund = s.api.post(
            f"/v1/payments/{pid}/refunds", json={"amount": 500}, headers={"Idempotency-Key": "r1"}
        )
        assert refund.status_code == 201, refund.text
        assert refund.json()["status"] == "pending"  # Adyen answered `received`
        (charge,) = s.checkout.channel.ledger.charged(reference(payment["attempts"][0]["id"]))
        assert charge.refunded == 500
        assert f"/v71/payments/{charge.reference}/refunds" in s.checkout.calls

        asked = reference(refund.json()["id"])  # the refund's reference at Adyen
        answer = asyncio.run(s.checkout.notify_refund(asked))
        assert answer is not None and (answer.status_code, answer.text) == (200, "[accepted]")
        settled = s.payment(pid)
        assert [r["status"] for r in settled["refunds"]] == ["succeeded"]
        assert settled["amount_refunded"] == 500

        before = count_rows(s.server.runtime.store)
        again = asyncio.run(s.checkout.notify_refund(asked))  # resent: nothing changes
        assert again is not None and again.text == "[accepted]"
        assert count_rows(s.server.runtime.store) == before


def test_a_refund_failed_webhook_fails_the_refund(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-back-2")
        refund = s.api.post(f"/v1/payments/{payment['id']}/refunds", json={"amount": 700})
        assert refund.json()["status"] == "pending"
        asked = reference(refund.json()["id"])
        told = s.checkout.notify_refund(asked, "REFUND_FAILED", reason="Card closed")
        assert asyncio.run(told) is not None
        settled = s.payment(payment["id"])
        (failed,) = settled["refunds"]
        assert failed["status"] == "failed"
        assert settled["amount_refunded"] == 0 and settled["status"] == "succeeded"


def test_reconciliation_finds_a_mismatch_in_the_settlement_report(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        right = s.pay("sim_approve", "order-a")
        wrong = s.pay("sim_approve", "order-b")
        missing = s.pay("sim_approve", "order-c")
        psp = wrong["attempts"][0]["provider_reference"]
        assert psp
        s.checkout.report_amounts[psp] = Money(1888, "EUR")  # the report says otherwise
        s.checkout.report_omits.add(missing["attempts"][0]["provider_reference"])  # or nothing

        code, report = s.reconcile(tmp_path)
        assert code == 1, report
        assert report["providers"] == ["adyen_eu"] and report["charges_compared"] == 2
        amount, unsettled = sorted(report["mismatches"], key=lambda m: m["kind"])
        assert unsettled["kind"] == "recorded_not_charged"
        assert unsettled["payment_id"] == missing["id"]
        assert amount["kind"] == "amount" and amount["reference"] == psp
        assert amount["payment_id"] == wrong["id"] != right["id"]
        assert (amount["store"], amount["provider_says"]) == ("amount 1999", "charged 1888")
