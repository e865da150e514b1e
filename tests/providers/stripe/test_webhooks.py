"""Stripe's signed webhooks: verified before anything is read, then read.

Signatures are computed here as Stripe documents them
(https://docs.stripe.com/webhooks#verify-manually): `Stripe-Signature: t=<time>,v1=<hex>`,
the hex being HMAC-SHA256 under the endpoint's secret of `"<time>.<raw body>"`. One test
takes a webhook localstripe itself signed and sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from paymend.providers.base import ProviderNotification, ProviderOutcome
from paymend.providers.stripe import BadSignature, UnsupportedEvent
from paymend.providers.stripe.webhooks import parse
from tests.helpers import WAIT_S
from tests.providers.stripe.shaped_server import intent
from tests.providers.stripe.support import WEBHOOK_SECRET, SetClock, channel, charge

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def event(kind: str, obj: dict[str, Any]) -> bytes:
    """An event as Stripe posts it (https://docs.stripe.com/api/events/object)."""
    body = {
        "id": "evt_1",
        "object": "event",
        "type": kind,
        "created": int(NOW.timestamp()),
        "data": {"object": obj},
    }
    return json.dumps(body).encode()


def sign(body: bytes, *, secret: str = WEBHOOK_SECRET, at: datetime = NOW) -> dict[str, str]:
    t = int(at.timestamp())
    v1 = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={v1}"}


def read(headers: dict[str, str], body: bytes) -> ProviderNotification:
    return parse(headers, body, WEBHOOK_SECRET, NOW)


def test_a_succeeded_payment_intent_settles_its_attempt() -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    note = read(sign(body), body)
    assert (note.idempotency_key, note.reference) == ("att_1", "pi_1")
    assert note.result.outcome is ProviderOutcome.SUCCEEDED


def test_a_failed_payment_intent_carries_its_decline_code() -> None:
    failed = intent(
        "pi_2",
        "requires_payment_method",
        "att_2",
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )
    body = event("payment_intent.payment_failed", failed)
    note = read(sign(body), body)
    assert note.result.outcome is ProviderOutcome.DECLINED
    assert note.result.raw_code == "insufficient_funds"


@pytest.mark.parametrize(
    ("kind", "status", "outcome"),
    [
        ("payment_intent.requires_action", "requires_action", ProviderOutcome.REQUIRES_ACTION),
        ("payment_intent.canceled", "canceled", ProviderOutcome.DECLINED),
        ("payment_intent.processing", "processing", ProviderOutcome.PENDING),
    ],
)
def test_the_other_payment_intent_events(kind: str, status: str, outcome: ProviderOutcome) -> None:
    body = event(kind, intent("pi_3", status, "att_3"))
    assert read(sign(body), body).result.outcome is outcome


def test_a_refund_names_the_charge_by_its_payment_intent() -> None:
    refunded = {
        "id": "ch_1",
        "object": "charge",
        "amount": 1000,
        "amount_refunded": 300,
        "currency": "eur",
        "refunded": False,
        "payment_intent": "pi_4",
        "metadata": {},
    }
    body = event("charge.refunded", refunded)
    note = read(sign(body), body)
    assert (note.reference, note.idempotency_key) == ("pi_4", None)
    assert note.result.raw["amount_refunded"] == 300


def test_a_signature_under_another_secret_is_refused() -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    with pytest.raises(BadSignature):
        read(sign(body, secret="whsec_someone_else"), body)


def test_a_body_changed_after_signing_is_refused() -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    forged = body.replace(b'"succeeded"', b'"canceled"', 1)
    with pytest.raises(BadSignature):
        read(sign(body), forged)


@pytest.mark.parametrize("seconds", [-301, 301, -3600])
def test_a_timestamp_outside_the_tolerance_is_refused(seconds: int) -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    with pytest.raises(BadSignature, match="from now"):
        read(sign(body, at=NOW + timedelta(seconds=seconds)), body)


def test_a_timestamp_inside_the_tolerance_is_accepted() -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    assert read(sign(body, at=NOW - timedelta(seconds=299)), body).reference == "pi_1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=1,v0=abc"}],
    ids=["missing", "garbage", "no v1"],
)
def test_a_missing_or_malformed_header_is_refused(headers: dict[str, str]) -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    with pytest.raises(BadSignature):
        read(headers, body)


def test_during_a_secret_roll_any_v1_may_match() -> None:
    body = event("payment_intent.succeeded", intent("pi_1", "succeeded", "att_1"))
    good = sign(body)["Stripe-Signature"]
    old = sign(body, secret="whsec_old")["Stripe-Signature"].split(",")[1]
    assert read({"stripe-signature": f"{good},{old}"}, body).reference == "pi_1"


def test_a_verified_event_of_another_type_is_told_apart() -> None:
    body = event("customer.created", {"id": "cus_1", "object": "customer"})
    with pytest.raises(UnsupportedEvent):
        read(sign(body), body)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps the first event whose body holds
    `needle` (localstripe also sends the events of earlier tests' charges)."""

    def __init__(self, needle: bytes) -> None:
        self.got = threading.Event()
        self.headers: dict[str, str] = {}
        self.body = b""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if needle in body and not receiver.got.is_set():
                    receiver.headers, receiver.body = dict(self.headers.items()), body
                    receiver.got.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
def test_a_webhook_localstripe_signed_verifies(localstripe: str) -> None:
    receiver = Receiver(b'"ls-hook"')
    try:
        configured = httpx.post(
            f"{localstripe}/_config/webhooks/paymend_test",
            data={
                "url": receiver.url,
                "secret": WEBHOOK_SECRET,
                "events[]": "payment_intent.succeeded",
            },
            timeout=WAIT_S,
        )
        assert configured.status_code == 200, configured.text

        async def pay() -> tuple[str | None, ProviderNotification]:
            clock = SetClock(datetime.now(UTC))
            provider = channel(localstripe, intent_params={}, clock=clock)
            try:
                paid = await provider.authorize(charge("ls-hook", "pm_card_visa"))
                # localstripe posts its events a second after the change
                assert await asyncio.to_thread(receiver.got.wait, 30)
                clock.at = datetime.now(UTC)
                return paid.reference, provider.parse_notification(receiver.headers, receiver.body)
            finally:
                await provider.aclose()

        reference, note = asyncio.run(pay())
        assert note.reference == reference and note.idempotency_key == "ls-hook"
        assert note.result.outcome is ProviderOutcome.SUCCEEDED
        with pytest.raises(BadSignature):
            parse(receiver.headers, receiver.body, "whsec_wrong", datetime.now(UTC))
    finally:
        httpx.post(
            f"{localstripe}/_config/webhooks/paymend_test",
            data={"url": "http://127.0.0.1:9/", "secret": WEBHOOK_SECRET, "events[]": "none"},
            timeout=WAIT_S,
        )
        receiver.httpd.shutdown()
        receiver.httpd.server_close()
