"""A `type: stripe` channel behind paymend's real HTTP API, against localstripe, on SQLite
and PostgreSQL: a card that needs 3-D Secure gives the checkout an `sdk` next action with
the PaymentIntent's client secret for Stripe.js (and the ops API none of it); the shop's
cancel cancels the PaymentIntent at Stripe, so the customer can no longer complete it;
and at the server's stop the connector's HTTP client is closed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from paymend.providers.stripe import StripeProvider
from tests.helpers import WAIT_S
from tests.providers.harness import Connected, connected
from tests.providers.stripe.support import API_KEY, WEBHOOK_SECRET
from tests.providers.stripe.test_localstripe import authenticate, card

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
THREE_DS = "4000002500003155"  # a test card that always asks for 3-D Secure
BODY: dict[str, Any] = {
    "amount": 2500,
    "currency": "EUR",
    "method": "card",
    "order_id": "order-1",
    "customer": {"id": "c-1", "locale": "en"},
}


@contextlib.contextmanager
def stripe_connected(
    db_url: str, monkeypatch: pytest.MonkeyPatch, localstripe: str
) -> Iterator[Connected]:
    def options(face_url: str, notify_url: str) -> dict[str, Any]:
        return {"type": "stripe", "base_url": face_url, "currencies": ["EUR"]}

    with connected(
        db_url,
        monkeypatch,
        channel="stripe_eu",
        options=options,
        credentials={"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET},
        body=BODY,
        face_url=localstripe,
        engine={"provider_timeout": "5s", "checkout_deadline": "10s"},
    ) as c:
        # localstripe refuses `automatic_payment_methods` and `return_url` (its
        # PaymentIntent takes neither): send it what it knows, as test_localstripe does
        provider = c.server.runtime.providers["stripe_eu"]
        assert isinstance(provider, StripeProvider)
        provider.intent_params = {}
        yield c


@pytest.fixture
def s(db_url: str, monkeypatch: pytest.MonkeyPatch, localstripe: str) -> Iterator[Connected]:
    with stripe_connected(db_url, monkeypatch, localstripe) as c:
        yield c


def intent(localstripe: str, intent_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{localstripe}/v1/payment_intents/{intent_id}", auth=(API_KEY, ""), timeout=WAIT_S
    )
    found: dict[str, Any] = answer.json()
    return found


def test_3d_secure_is_an_sdk_action_with_the_client_secret(s: Connected, localstripe: str) -> None:
    payment = s.pay(card(localstripe, THREE_DS), "order-3ds")
    assert payment["status"] == "requires_action"
    action = payment["next_action"]
    assert (action["type"], action["sdk"], action["provider"]) == ("sdk", "stripe_js", "stripe_eu")
    reference = payment["attempts"][0]["provider_reference"]
    assert action["parameters"] == {
        "client_secret": intent(localstripe, reference)["client_secret"],
        "payment_intent": reference,
    }
    assert API_KEY not in str(payment)
    assert action["confirm_url"] == f"/v1/payments/{payment['id']}/confirm"

    authenticate(localstripe, reference)  # Stripe.js ran the customer through 3-D Secure
    confirmed = s.act(payment["id"], "confirm")
    assert confirmed.json()["status"] == "succeeded"


def test_cancel_cancels_the_payment_intent_waiting_for_the_customer(
    s: Connected, localstripe: str
) -> None:
    payment = s.pay(card(localstripe, THREE_DS), "order-3ds-cancel")
    reference = payment["attempts"][0]["provider_reference"]
    canceled = s.act(payment["id"], "cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["attempts"][0]["status"] == "failed"
    assert intent(localstripe, reference)["status"] == "canceled"  # nothing left to pay


def test_the_connectors_http_client_is_closed_at_the_servers_stop(
    db_url: str, monkeypatch: pytest.MonkeyPatch, localstripe: str
) -> None:
    with stripe_connected(db_url, monkeypatch, localstripe) as c:
        assert c.pay("pm_card_visa", "order-ok")["status"] == "succeeded"
        provider = c.server.runtime.providers["stripe_eu"]
        assert isinstance(provider, StripeProvider)
        used = provider._http._client_async
        assert not used.is_closed
    assert used.is_closed  # closed by the server's lifespan end, on its own loop
    assert not provider._http._client_async.is_closed  # a fresh one, should it be used
