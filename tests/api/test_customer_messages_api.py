"""What the customer reads always matches the payment, over real HTTP on both databases:
one text per status, a failed payment's text says it did not go through and what to do,
a succeeded one carries no failure, a fraud block reads and links as a plain decline,
and repeated failures of one customer (by id, email or phone) escalate without ever
offering a retry again."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from paymend.failures.classify import default_classifier
from paymend.store.pii import DataKey
from paymend.store.tables import payments
from tests.api.conftest import Server, running
from tests.api.test_payments_api import BODY
from tests.helpers import WAIT_S, ManualClock

KEY = DataKey.generate().encoded()
# one channel: what a status query settles is final, without a failover to follow
CONFIG = {
    "seed": 3,
    "providers": {"sim_a": {"type": "simulator", "methods": ["card"]}},
    "routing": ["sim_a"],
    "engine": {"provider_timeout": "5s"},
}
EN = {"Accept-Language": "en"}
CONFIRMING = re.compile(r"confirming|do not pay again", re.I)
RETRY_TEXTS = {
    s.text
    for f in default_classifier().messages.files.values()
    for m in (*f.messages.values(), *(msg for _, msg in f.statuses))
    for s in m.actions
    if s.retry
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(db_url: str, clock: ManualClock) -> Iterator[Server]:
    """A server with a data key, on a clock the test moves (provider hangs cost no time)."""
    settings = Settings(database_url=db_url, data_key=KEY)
    runtime = build_runtime(settings, PaymendConfig.model_validate(CONFIG), clock=clock)
    with running(runtime) as started:
        yield started


_orders = itertools.count(1)


def pay(api: httpx.Client, token: str, **changes: Any) -> dict[str, Any]:
    """A payment of its own order (an order holds one payment in flight or paid)."""
    body = {**BODY, "order_id": f"msg-{next(_orders)}", "payment_token": token, **changes}
    response = api.post("/v1/payments", json=body, headers=EN)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def text_of(message: dict[str, Any]) -> str:
    return " ".join([message["title"], message["message"], *message["suggestions"]])


def stored_failure(server: Server, pid: str) -> tuple[str | None, str | None]:
    row = server.runtime.store.run_sync(
        lambda c: c.execute(
            sa.select(payments.c.failure_code, payments.c.failure_message).where(
                payments.c.id == pid
            )
        ).one()
    )
    return row[0], row[1]


def test_a_processing_payment_says_confirming_and_carries_no_failure(api: httpx.Client) -> None:
    p = pay(api, "sim_timeout")
    assert p["status"] == "processing" and p["failure"] is None
    msg = p["customer_message"]
    assert msg["status"] == "processing" and msg["locale"] == "en"
    assert CONFIRMING.search(text_of(msg)) and msg["help_url"] is None


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("sim_error_system_error", "provider_error"),
        ("sim_decline_not_a_code_any_map_knows", "unrecognized_response"),
    ],
)
def test_a_payment_that_failed_after_an_unknown_outcome_says_it_did_not_go_through(
    api: httpx.Client, token: str, code: str
) -> None:
    p = pay(api, token)
    assert p["status"] == "failed" and p["failure"]["code"] == code
    msg = p["customer_message"]
    text = text_of(msg)
    assert not CONFIRMING.search(text)  # not a dead end
    assert "did not go through" in text and "Nothing was charged" in text
    assert "another payment method" in text  # what to do now
    assert (msg["title"], msg["message"]) == (p["failure"]["title"], p["failure"]["message"])


def test_a_timeout_settled_as_not_charged_reads_as_failed(
    server: Server, api: httpx.Client, clock: ManualClock
) -> None:
    p = pay(api, "sim_timeout")
    assert p["status"] == "processing"
    for _ in range(10):  # the worker's status queries, as many as it takes, bounded
        clock.advance(60)
        asyncio.run(server.runtime.worker.sweep())
        got = api.get(f"/v1/payments/{p['id']}", headers=EN).json()
        if got["status"] != "processing":
            break
    assert got["status"] == "failed" and got["failure"]["code"] == "provider_timeout"
    text = text_of(got["customer_message"])
    assert not CONFIRMING.search(text)
    assert "did not go through" in text and "pending amount" in text
    zh = api.get(f"/v1/payments/{p['id']}").json()["customer_message"]  # the customer's locale
    assert (
        zh["locale"] == "zh-CN" and "未完成" in zh["message"] and "请勿重复支付" not in text_of(zh)
    )


def test_after_3ds_the_customer_reads_confirm_then_received_and_no_failure(
    server: Server, api: httpx.Client
) -> None:
    p = pay(api, "sim_3ds")
    assert p["status"] == "requires_action" and p["failure"] is None
    assert "confirm the payment with your bank" in p["customer_message"]["title"].lower()
    confirmed = api.post(f"/v1/payments/{p['id']}/confirm", headers=EN).json()
    again = api.get(f"/v1/payments/{p['id']}", headers=EN).json()
    for view in (confirmed, again):
        assert view["status"] == "succeeded" and view["failure"] is None
        assert view["customer_message"]["title"] == "Payment received"
        assert "bank" not in text_of(view["customer_message"]).lower()
    assert stored_failure(server, p["id"]) == (None, None)


def test_held_canceled_and_refunded_payments_each_have_their_text(
    server: Server, api: httpx.Client
) -> None:
    asyncio.run(
        server.runtime.service.controls.set(
            "hold",
            "bank",
            "CMB",
            None,
            "checks",
            "ops-lin",
            ["sim_a"],
            amount_above=1,
            currency="CNY",
        )
    )
    held = pay(api, "tok_ok", bank="CMB")
    assert held["status"] == "held" and held["failure"] is None
    assert held["customer_message"]["title"] == "Your payment is being checked"
    assert "review" not in text_of(held["customer_message"]).lower()

    waiting = pay(api, "sim_3ds")
    canceled = api.post(f"/v1/payments/{waiting['id']}/cancel", headers=EN).json()
    assert canceled["status"] == "canceled" and canceled["failure"] is None
    assert "not charged" in canceled["customer_message"]["message"]

    paid = pay(api, "tok_ok")
    assert paid["customer_message"]["status"] == "succeeded"
    api.post(f"/v1/payments/{paid['id']}/refunds", json={"amount": 500}).raise_for_status()
    part = api.get(f"/v1/payments/{paid['id']}", headers=EN).json()
    assert part["status"] == "partially_refunded"
    assert part["customer_message"]["title"] == "Part of your payment was refunded"
    api.post(f"/v1/payments/{paid['id']}/refunds", json={}).raise_for_status()
    whole = api.get(f"/v1/payments/{paid['id']}").json()
    assert whole["status"] == "refunded" and whole["customer_message"]["title"] == "已全额退款"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("sim_decline_suspected_fraud", "suspected_fraud"),
        ("sim_decline_lost_card", "lost_or_stolen_card"),
    ],
)
def test_a_fraud_block_shows_the_customer_only_the_generic_decline(
    server: Server, api: httpx.Client, token: str, code: str
) -> None:
    p = pay(api, token)
    failure, msg = p["failure"], p["customer_message"]
    assert failure["code"] == code  # the merchant still sees the real code
    generic = f"{server.url}/help/generic_decline?locale=en"
    assert failure["help_url"] == msg["help_url"] == generic
    assert msg["title"] == "Your bank declined the payment"
    page = httpx.get(msg["help_url"], timeout=WAIT_S)
    assert page.status_code == 200 and "declined" in page.text
    for leaked in ("fraud", "stolen", "lost", code):
        assert leaked not in page.text.lower() and leaked not in text_of(msg).lower()
    direct = httpx.get(f"{server.url}/help/{code}", params={"locale": "zh-CN"}, timeout=WAIT_S)
    assert direct.status_code == 302
    assert direct.headers["location"] == "/help/generic_decline?locale=zh-CN"
    followed = httpx.get(f"{server.url}/help/{code}", follow_redirects=True, timeout=WAIT_S)
    assert followed.status_code == 200 and code not in followed.text
    assert str(followed.url).startswith(f"{server.url}/help/generic_decline")


def three_failures(api: httpx.Client, customers: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [
        pay(api, "sim_decline_incorrect_details", order_id=f"o-{i}", customer=c)["customer_message"]
        for i, c in enumerate(customers)
    ]


def assert_escalates(messages: list[dict[str, Any]]) -> None:
    first, second, third = (m["suggestions"] for m in messages)
    assert any(s in RETRY_TEXTS for s in first)  # re-entering the details, once
    assert "different card or payment method" in second[0]
    assert "customer service" in third[0]  # the shop's support (its fallback name)
    for later in (second, third):  # the escalation first, then never a retry again
        assert not any(s in RETRY_TEXTS for s in later)
        assert not any(re.search(r"again|retry", s, re.I) for s in later[1:]), later


def test_escalation_by_customer_id_never_offers_a_retry_a_third_time(api: httpx.Client) -> None:
    assert_escalates(three_failures(api, [{"id": "c-7"}] * 3))


def test_escalation_recognises_a_customer_by_email_alone(api: httpx.Client) -> None:
    emails = ["Wang@Example.com", "wang@EXAMPLE.com", "WANG@example.COM"]
    assert_escalates(three_failures(api, [{"email": e} for e in emails]))
    other = three_failures(api, [{"email": "zhao@example.com"}])[0]["suggestions"]
    assert "different card" not in other[0]  # someone else starts afresh


def test_escalation_recognises_a_customer_by_phone_alone(api: httpx.Client) -> None:
    phones = ["+86 138 0013 8000", "+8613800138000", "0086-138-0013-8000"]
    assert_escalates(three_failures(api, [{"phone": p} for p in phones]))
