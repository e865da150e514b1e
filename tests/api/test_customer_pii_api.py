"""Customer email and phone over real HTTP, on both databases: sealed at rest with a data
key, not stored at all without one, masked in every response, webhook payload, attempt
snapshot, stored idempotent answer and log line."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from paymend.observability import configure_logging
from paymend.store import outbox, pii
from paymend.store import payments as repo
from paymend.store.pii import DataKey, Vault
from tests.api.conftest import CONFIG, Server, running
from tests.api.test_payments_api import BODY
from tests.store.test_pii import everything_stored, raw_row

KEY = DataKey.generate()
EMAIL, PHONE = "Li.Wei@Example.com", "+86 138 1234 5678"
CLEAR = ("li.wei@example.com", "13812345678", "138 1234 5678")
CUSTOMER = {"id": "c-42", "locale": "zh-CN", "email": EMAIL, "phone": PHONE}
MASKED = {"id": "c-42", "locale": "zh-CN", "email": "L***@Example.com", "phone": "+86****5678"}


@pytest.fixture
def sealed(db_url: str) -> Iterator[Server]:
    runtime = build_runtime(
        Settings(database_url=db_url, data_key=KEY.encoded()), PaymendConfig.model_validate(CONFIG)
    )
    with running(runtime) as server:
        yield server


def pay_and_read(server: Server, token: str) -> str:
    with server.client() as api:
        body = {**BODY, "payment_token": token, "customer": CUSTOMER}
        created = api.post("/v1/payments", json=body, headers={"Idempotency-Key": token})
        assert created.status_code == 201, created.text
        payment = created.json()
        got = api.get(f"/v1/payments/{payment['id']}").json()
        listed = api.get("/v1/payments", params={"order_id": BODY["order_id"]}).json()
    for view in (payment, got, *listed["data"]):
        assert view["customer"] == MASKED
    store = server.runtime.store
    attempts = store.run_sync(lambda c: repo.list_attempts(c, payment["id"]))
    assert attempts and all(a.request["customer"] == MASKED for a in attempts)  # snapshots
    events = store.run_sync(lambda c: outbox.for_subject(c, payment["id"]))
    assert events and all(e.payload["customer"] == MASKED for e in events)  # webhooks
    return str(payment["id"])


@pytest.mark.parametrize("token", ["tok_ok", "sim_decline_expired_card", "sim_3ds"])
def test_with_a_key_contact_details_are_sealed_and_shown_masked(sealed: Server, token: str) -> None:
    pid = pay_and_read(sealed, token)
    stored = everything_stored(sealed.runtime.store)
    assert not any(c in stored for c in CLEAR)  # payments, attempts, events, idempotency
    row = raw_row(sealed.runtime.store, pid)
    assert row.customer_email_sealed.startswith(f"pm1.{KEY.id}.")
    contact = sealed.runtime.store.run_sync(lambda c: pii.contact(c, Vault(KEY), pid))
    assert contact == pii.Contact(EMAIL, PHONE)


def test_without_a_key_contact_details_are_not_stored(server: Server) -> None:
    pid = pay_and_read(server, "tok_ok")
    assert not any(c in everything_stored(server.runtime.store) for c in CLEAR)
    row = raw_row(server.runtime.store, pid)
    assert (row.customer_email_sealed, row.customer_phone_sealed) == (None, None)
    assert (row.customer_email_index, row.customer_phone_index) == (None, None)
    assert row.customer == MASKED


def test_log_lines_carry_no_clear_contact(sealed: Server) -> None:
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    try:
        pay_and_read(sealed, "sim_decline_insufficient_funds")
    finally:
        configure_logging("INFO")
    text = buffer.getvalue().lower()
    assert "provider_call" in text  # the lines were captured
    assert not any(c in text for c in CLEAR)


def test_payments_are_found_by_the_customers_email_or_phone(sealed: Server) -> None:
    """Search matches the sealed contact through its keyed index, whatever the case or
    spacing the shop sends this time; another customer's payments stay out."""
    with sealed.client() as api:
        mine = []
        for n, customer in enumerate(
            (CUSTOMER, {"email": "li.wei@example.com"}, {"phone": "+8613812345678"})
        ):
            body = {**BODY, "order_id": f"find-{n}", "customer": customer}
            mine.append(api.post("/v1/payments", json=body).json()["id"])
        other = {"email": "wang@example.com", "phone": "+8613900000000"}
        api.post("/v1/payments", json={**BODY, "order_id": "find-x", "customer": other})

        def found(**params: str) -> set[str]:
            response = api.get("/v1/payments", params=params)
            assert response.status_code == 200, response.text
            return {p["id"] for p in response.json()["data"]}

        assert found(customer_email=" LI.WEI@example.COM ") == {mine[0], mine[1]}
        assert found(customer_phone="+86 138-1234-5678") == {mine[0], mine[2]}
        assert found(customer_email="nobody@example.com") == set()


def test_without_a_key_search_by_contact_is_refused_plainly(server: Server) -> None:
    with server.client() as api:
        refused = api.get("/v1/payments", params={"customer_email": "li@example.com"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("customer_search_unavailable", "customer_email")
    assert "li@example.com" not in refused.text  # not echoed
