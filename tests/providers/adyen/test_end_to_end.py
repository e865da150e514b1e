"""Adyen end to end, on SQLite and PostgreSQL: paymend's real HTTP API, the real Adyen
connector, and the simulator's Adyen Checkout face on its own 127.0.0.1 port, speaking
Checkout v71 with a locally made API key. The face sends its HMAC-signed webhooks to
paymend's real notification endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from paymend.api.app import create_app
from paymend.cli import main
from paymend.config import PaymendConfig, Settings, secret_env_name
from paymend.domain.money import Money
from paymend.engine.runtime import build_runtime
from paymend.sim.adyen_checkout import REPORT_PATH, AdyenCheckout, FaceKeys
from tests.api.conftest import Server, bound_socket, serve_asgi
from tests.helpers import count_rows, make_merchant
from tests.providers.adyen.face import face, keys

BODY: dict[str, Any] = {
    "amount": 1999,
    "currency": "EUR",
    "method": "card",
    "order_id": "order-1",
    "payment_token": "sim_approve",
    "customer": {"id": "c-1", "locale": "en"},
}
NOTIFY = "/v1/providers/adyen_eu/notifications"


def reference(attempt_id: str) -> str:
    """The attempt's `reference` at Adyen: its idempotency key."""
    return f"paymend-{attempt_id}"


@dataclass
class Setup:
    server: Server
    checkout: AdyenCheckout
    api: httpx.Client
    config: dict[str, Any]
    face_url: str

    def pay(self, token: str, order: str) -> dict[str, Any]:
        body = {**BODY, "payment_token": token, "order_id": order}
        created = self.api.post("/v1/payments", json=body, headers={"Idempotency-Key": order})
        assert created.status_code == 201, created.text
        payment: dict[str, Any] = created.json()
        return payment

    def payment(self, pid: str) -> dict[str, Any]:
        got: dict[str, Any] = self.api.get(f"/v1/payments/{pid}").json()
        return got

    def notify(self, key: str) -> httpx.Response | None:
        return asyncio.run(self.checkout.notify(key))

    def post_notification(self, body: bytes) -> httpx.Response:
        return httpx.post(
            self.server.url + NOTIFY, content=body, headers={"content-type": "application/json"}
        )


@contextlib.contextmanager
def adyen_setup(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    fallback: bool = False,
    wrong_key: bool = False,
    failing_repeats: bool = False,
    **faults: Any,
) -> Iterator[Setup]:
    checkout = face(**faults)
    checkout.failing_repeats = failing_repeats  # only a webhook can tell
    face_server, face_thread, face_url = serve_asgi(checkout, Settings(), lifespan="on")
    sock = bound_socket()
    paymend_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    checkout.webhook_url = paymend_url + NOTIFY  # as set in Adyen's Customer Area
    credentials = keys().credentials()
    if wrong_key:  # an API key Adyen does not know
        credentials["api_key"] = FaceKeys.generate().api_key
    for name, value in credentials.items():
        monkeypatch.setenv(secret_env_name("adyen_eu", name), value)
    providers: dict[str, Any] = {
        "adyen_eu": {
            "type": "adyen",
            "merchant_account": keys().merchant_account,
            "base_url": face_url,
            "return_url": "https://shop.example.com/back",
            "report_url": face_url + REPORT_PATH,
            "currencies": ["EUR"],
        }
    }
    if fallback:
        providers["sim_a"] = {"type": "simulator", "methods": ["card"]}
    config = {
        "seed": 1,
        "providers": providers,
        "routing": list(providers),
        "engine": {"provider_timeout": "500ms", "checkout_deadline": "3s"},
    }
    runtime = build_runtime(Settings(database_url=db_url), PaymendConfig.model_validate(config))
    merchant_id, key = make_merchant(runtime.store)
    uv, thread, url = serve_asgi(create_app(runtime), runtime.settings, sock=sock)
    server = Server(url, runtime, key, merchant_id)
    try:
        with server.client() as api:
            yield Setup(server, checkout, api, config, face_url)
    finally:
        checkout.release()
        uv.should_exit = face_server.should_exit = True
        thread.join(10)
        face_thread.join(10)
        runtime.close()


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


def test_3d_secure_waits_for_the_shopper_and_settles_by_webhook(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        s.checkout.auto_notify = True
        payment = s.pay("sim_3ds", "order-3ds")
        assert payment["status"] == "requires_action"
        (attempt,) = payment["attempts"]
        assert attempt["raw_code"] == "RedirectShopper"
        action = payment["next_action"]
        assert (action["type"], action["provider"]) == ("redirect", "adyen_eu")
        assert action["url"] == f"{s.face_url}/sim/3ds/{reference(attempt['id'])}"

        assert httpx.get(action["url"]).status_code == 200  # the shopper's browser
        settled = s.payment(payment["id"])
        assert settled["status"] == "succeeded"
        assert len(s.checkout.channel.ledger.charged(reference(attempt["id"]))) == 1


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
        refused = s.post_notification(json.dumps(webhook).encode())
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "notification_not_verified"
        del item["additionalData"]
        assert s.post_notification(json.dumps(webhook).encode()).status_code == 400
        assert s.post_notification(b"\xff\xfe not json").status_code == 400
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


def test_a_payment_is_refunded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with adyen_setup(db_url, monkeypatch) as s:
        payment = s.pay("sim_approve", "order-back")
        pid = payment["id"]
        refund = s.api.post(
            f"/v1/payments/{pid}/refunds", json={"amount": 500}, headers={"Idempotency-Key": "r1"}
        )
        assert refund.status_code == 201, refund.text
        assert refund.json()["status"] == "succeeded"
        (charge,) = s.checkout.channel.ledger.charged(reference(payment["attempts"][0]["id"]))
        assert charge.refunded == 500
        assert f"/v71/payments/{charge.reference}/refunds" in s.checkout.calls


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

        path = tmp_path / "paymend.yaml"
        path.write_text(yaml.safe_dump(s.config))
        env = {
            "PAYMEND_CONFIG": str(path),
            "PAYMEND_DATABASE_URL": s.server.runtime.settings.database_url,
        }
        result = CliRunner().invoke(main, ["reconcile", "--json"], env=env)
        assert result.exit_code == 1, result.output
        report = json.loads(result.output.strip().splitlines()[-1])
        assert report["providers"] == ["adyen_eu"] and report["charges_compared"] == 2
        amount, unsettled = sorted(report["mismatches"], key=lambda m: m["kind"])
        assert unsettled["kind"] == "recorded_not_charged"
        assert unsettled["payment_id"] == missing["id"]
        assert amount["kind"] == "amount" and amount["reference"] == psp
        assert amount["payment_id"] == wrong["id"] != right["id"]
        assert (amount["store"], amount["provider_says"]) == ("amount 1999", "charged 1888")
