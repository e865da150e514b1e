"""A `type: stripe` channel declared in paymend.yaml, built by the registry, behind
paymend's real HTTP API, on SQLite and PostgreSQL: a charge whose answer was lost is
settled by Stripe's signed webhook posted to the notification endpoint, once; a forged
webhook is refused; an event the connector does not read is acknowledged and changes
nothing. The Stripe-shaped server stands in for Stripe."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from paymend.api.app import create_app
from paymend.config import PaymendConfig, Settings, secret_env_name
from paymend.engine.runtime import build_runtime
from tests.api.conftest import Server, serve_asgi
from tests.helpers import WAIT_S, count_rows, make_merchant
from tests.providers.stripe.shaped_server import DROP, Answer, ShapedStripe, error, intent
from tests.providers.stripe.support import API_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
NOTIFY = "/v1/providers/stripe_eu/notifications"


@dataclass
class Setup:
    server: Server
    api: httpx.Client

    def post_event(self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        body = json.dumps(event).encode()
        t = int(time.time())  # the runtime's clock is the wall clock
        v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return httpx.post(
            self.server.url + NOTIFY,
            content=body,
            headers={"content-type": "application/json", "Stripe-Signature": f"t={t},v1={v1}"},
            timeout=WAIT_S,
        )


@contextlib.contextmanager
def stripe_setup(db_url: str, monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[Setup]:
    monkeypatch.setenv(secret_env_name("stripe_eu", "api_key"), API_KEY)
    monkeypatch.setenv(secret_env_name("stripe_eu", "webhook_secret"), WEBHOOK_SECRET)
    config = {
        "seed": 1,
        "providers": {"stripe_eu": {"type": "stripe", "base_url": url, "currencies": ["EUR"]}},
        "routing": ["stripe_eu"],
        "engine": {"provider_timeout": "2s", "checkout_deadline": "5s"},
    }
    runtime = build_runtime(Settings(database_url=db_url), PaymendConfig.model_validate(config))
    merchant_id, key = make_merchant(runtime.store)
    uv, thread, base = serve_asgi(create_app(runtime), runtime.settings)
    server = Server(base, runtime, key, merchant_id)
    try:
        with server.client() as api:
            yield Setup(server, api)
    finally:
        uv.should_exit = True
        thread.join(10)
        runtime.close()


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event (https://docs.stripe.com/api/events/object)."""
    return {"id": f"evt_{kind}", "object": "event", "type": kind, "data": {"object": obj}}


def test_a_lost_answer_is_settled_by_the_signed_webhook_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch, shaped: ShapedStripe
) -> None:
    shaped.on("POST", "/v1/payment_intents", DROP)
    shaped.on("GET", "/v1/payment_intents/search", *[error(503, type="api_error")] * 10)
    with stripe_setup(db_url, monkeypatch, shaped.url) as s:
        body = {"amount": 2500, "currency": "EUR", "method": "card", "order_id": "o-wh-1"}
        created = s.api.post(
            "/v1/payments",
            json={**body, "payment_token": "pm_card_visa"},
            headers={"Idempotency-Key": "o-wh-1"},
        )
        assert created.status_code in (201, 202), created.text
        payment = created.json()
        assert payment["status"] == "processing"  # the answer was lost: not failed
        sent = shaped.requests("POST", "/v1/payment_intents")[0]  # then the query's fence
        key = sent.form["metadata[paymend_attempt]"]
        succeeded = event(
            "payment_intent.succeeded", intent("pi_wh", "succeeded", key, amount=2500)
        )

        forged = s.post_event(succeeded, secret="whsec_not_ours")
        assert forged.status_code == 400
        assert forged.json()["error"]["code"] == "notification_not_verified"
        assert s.api.get(f"/v1/payments/{payment['id']}").json()["status"] == "processing"

        ignored = s.post_event(event("customer.created", {"id": "cus_1", "object": "customer"}))
        assert ignored.status_code == 200  # acknowledged, so Stripe stops resending
        assert s.api.get(f"/v1/payments/{payment['id']}").json()["status"] == "processing"

        assert s.post_event(succeeded).status_code == 200
        settled = s.api.get(f"/v1/payments/{payment['id']}").json()
        assert settled["status"] == "succeeded"
        rows = count_rows(s.server.runtime.store)

        assert s.post_event(succeeded).status_code == 200  # Stripe resends: nothing changes
        assert s.api.get(f"/v1/payments/{payment['id']}").json() == settled
        assert count_rows(s.server.runtime.store) == rows
        confirmed = [
            r for r in shaped.requests("POST", "/v1/payment_intents") if r.form.get("confirm")
        ]
        assert confirmed == [sent]  # one charge was ever asked for


def refund_object(re_id: str, status: str, key: str, **more: Any) -> dict[str, Any]:
    """A Refund as Stripe sends it (https://docs.stripe.com/api/refunds/object)."""
    return {
        "id": re_id,
        "object": "refund",
        "amount": 1000,
        "currency": "eur",
        "status": status,
        "payment_intent": "pi_rf",
        "metadata": {"paymend_refund": key} if key else {},
        **more,
    }


def test_a_pending_refund_is_settled_by_refund_updated_webhooks(
    db_url: str, monkeypatch: pytest.MonkeyPatch, shaped: ShapedStripe
) -> None:
    """Stripe answers some refunds `pending`; sent again under the same Idempotency-Key
    the create replays that answer, so only `refund.updated` (or `refund.failed`,
    `charge.refund.updated`) can say how it ended."""
    shaped.on("POST", "/v1/payment_intents", Answer(200, intent("pi_rf", "succeeded", amount=2500)))
    pending = [Answer(200, refund_object(f"re_{n}", "pending", "")) for n in (1, 2)]
    shaped.on("POST", "/v1/refunds", *pending)
    with stripe_setup(db_url, monkeypatch, shaped.url) as s:
        body = {"amount": 2500, "currency": "EUR", "method": "card", "order_id": "o-rf-1"}
        created = s.api.post(
            "/v1/payments",
            json={**body, "payment_token": "pm_card_visa"},
            headers={"Idempotency-Key": "o-rf-1"},
        )
        assert created.json()["status"] == "succeeded", created.text
        pid = created.json()["id"]
        first = s.api.post(f"/v1/payments/{pid}/refunds", json={"amount": 1000})
        second = s.api.post(f"/v1/payments/{pid}/refunds", json={"amount": 700})
        assert [first.json()["status"], second.json()["status"]] == ["pending", "pending"]
        keys = [r.form["metadata[paymend_refund]"] for r in shaped.requests("POST", "/v1/refunds")]
        assert len(keys) == 2

        still = s.post_event(event("refund.updated", refund_object("re_1", "pending", keys[0])))
        assert still.status_code == 200
        assert [r["status"] for r in s.api.get(f"/v1/payments/{pid}").json()["refunds"]] == [
            "pending",
            "pending",
        ]
        done = event("refund.updated", refund_object("re_1", "succeeded", keys[0]))
        assert s.post_event(done, secret="whsec_not_ours").status_code == 400
        assert s.post_event(done).status_code == 200
        failed = refund_object(
            "re_2", "failed", keys[1], amount=700, failure_reason="lost_or_stolen_card"
        )
        assert s.post_event(event("charge.refund.updated", failed)).status_code == 200
        settled = s.api.get(f"/v1/payments/{pid}").json()
        by_id = {r["id"]: r for r in settled["refunds"]}
        assert by_id[first.json()["id"]]["status"] == "succeeded"
        assert by_id[second.json()["id"]]["status"] == "failed"
        assert settled["amount_refunded"] == 1000  # the failed 700 is free to refund again
        rows = count_rows(s.server.runtime.store)

        assert s.post_event(done).status_code == 200  # Stripe resends: nothing changes
        assert s.api.get(f"/v1/payments/{pid}").json() == settled
        assert count_rows(s.server.runtime.store) == rows
        stranger = refund_object("re_3", "succeeded", "")  # made in the Dashboard
        assert s.post_event(event("refund.updated", stranger)).status_code == 200
        assert s.api.get(f"/v1/payments/{pid}").json() == settled
