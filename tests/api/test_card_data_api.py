"""No card number is stored, logged or echoed, whatever its field, form or script; an order
id shaped like a card number still pays. A real server on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import random
from typing import Any

import httpx
import pytest

from paymend.domain.sandbox_cards import ADYEN, STRIPE, UNIONPAY
from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.domain.test_card_data import forms, random_pan
from tests.helpers import count_rows
from tests.logs import captured

# one published card per network, each form of them below
CARDS = [
    "4242424242424242",  # Stripe Visa
    "5555555555554444",  # Stripe Mastercard
    "2223003122003222",  # Stripe Mastercard 2-series
    "378282246310005",  # Stripe American Express
    "36227206271667",  # Stripe Diners Club, 14 digits
    "6205500000000000004",  # Stripe UnionPay, 19 digits
    "3569990010095841",  # Adyen JCB
    "6771798021000008",  # Adyen Maestro
    "6250946000000016",  # UnionPay International debit
    "6011601160116611",  # Adyen Discover
]
assert set(CARDS) <= set(STRIPE + ADYEN + UNIONPAY)


def put(path: str, value: str) -> dict[str, Any]:
    """The payment request with `value` at `path` ("metadata.<key>" as key: "metadata.*")."""
    body = copy.deepcopy(BODY)
    if path == "metadata.*":
        body["metadata"] = {value: "x"}
        return body
    node = body
    *parents, last = path.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = f"{value}@example.com" if path == "customer.email" else value
    return body


# where the value goes, and the param the error names
PLACES = [
    ("metadata.note", "metadata.note"),
    ("metadata.phone", "metadata.phone"),
    ("metadata.tel", "metadata.tel"),
    ("customer.phone", "customer.phone"),
    ("customer.email", "customer.email"),
    ("bank", "bank"),
    ("region", "region"),
    ("payment_token", "payment_token"),
    ("metadata.*", "metadata"),
]


def refused_cleanly(
    server: Server, api: httpx.Client, body: dict[str, Any], secrets: list[str], param: str | None
) -> None:
    before = count_rows(server.runtime.store)
    with captured() as logs:
        response = api.post("/v1/payments", json=body, headers={"Idempotency-Key": "k-card"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("card_data_not_allowed", param)
    assert count_rows(server.runtime.store) == before
    for secret in secrets:
        assert secret not in response.text
        assert not logs.holds(secret), secret
    assert any(line["event"] == "card_data_refused" for line in logs.lines())


def test_phone_fields_holding_a_card_number_are_refused(server: Server, api: httpx.Client) -> None:
    for path in ("customer.phone", "metadata.phone", "metadata.tel"):
        refused_cleanly(server, api, put(path, "4242424242424242"), ["4242424242424242"], path)


def test_every_form_of_a_card_number_in_every_field_is_refused_unseen(
    server: Server, api: httpx.Client
) -> None:
    form_names = list(forms(CARDS[0]))
    cases = [(form_names[i], PLACES[i % len(PLACES)]) for i in range(len(form_names))]
    cases += [("plus and spaces", place) for place in PLACES]
    for n, (form_name, (path, param)) in enumerate(cases):
        pan = CARDS[n % len(CARDS)]
        text = forms(pan)[form_name]
        refused_cleanly(server, api, put(path, text), [pan, text], param)


def test_a_card_number_as_a_refund_reason_is_refused(server: Server, api: httpx.Client) -> None:
    payment = api.post("/v1/payments", json=BODY).json()
    before = count_rows(server.runtime.store)
    text = forms("6200000000000005")["ideographic spaces"]
    response = api.post(f"/v1/payments/{payment['id']}/refunds", json={"reason": text})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "card_data_not_allowed",
        "message": response.json()["error"]["message"],
        "param": "reason",
    }
    assert count_rows(server.runtime.store) == before


def test_order_ids_shaped_like_card_numbers_pay_and_stay_out_of_the_logs(
    server: Server, api: httpx.Client
) -> None:
    """The issue's complaint: 9 of 100 random 16-digit order ids were refused."""
    rng = random.Random(7)
    ids = [random_pan(rng, rng.choice(["4", "5", "62"])) for _ in range(12)]
    with captured() as logs:
        for order_id in ids:
            body = {**BODY, "order_id": order_id, "metadata": {"invoice_id": order_id}}
            body["customer"] = {**BODY["customer"], "id": order_id}
            created = api.post("/v1/payments", json=body)
            assert created.status_code == 201, created.text
            assert created.json()["order_id"] == order_id
            found = api.get("/v1/payments", params={"order_id": order_id}).json()["data"]
            assert [p["id"] for p in found] == [created.json()["id"]]
    assert logs.lines()
    for order_id in ids:
        assert not logs.holds(order_id)


def test_identifiers_printed_like_cards_are_refused_in_bodies_paths_queries_and_keys(
    server: Server, api: httpx.Client
) -> None:
    pan = random_pan(random.Random(8))
    spaced = forms(pan)["spaces"]
    before = count_rows(server.runtime.store)
    with captured() as logs:
        body = api.post("/v1/payments", json={**BODY, "order_id": spaced})
        path = api.get(f"/v1/payments/{spaced}")
        query = api.get("/v1/payments", params={"order_id": forms(pan)["dots"]})
        sandbox = api.get("/v1/payments", params={"order_id": "4242424242424242"})
        key = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "4111111111111111"})
    for response, param in (
        (body, "order_id"),
        (path, "payment_id"),
        (query, "order_id"),
        (sandbox, "order_id"),
        (key, "Idempotency-Key"),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "card_data_not_allowed"
        assert response.json()["error"]["param"] == param
        assert pan not in response.text
    assert count_rows(server.runtime.store) == before
    assert not logs.holds(pan) and not logs.holds(spaced)


@pytest.mark.parametrize("phone", ["+49 151 23456789", "+1 (415) 555-0132", "+8613812345678"])
def test_real_phone_numbers_pay(api: httpx.Client, phone: str) -> None:
    body = {**BODY, "customer": {**BODY["customer"], "phone": phone}, "metadata": {"tel": phone}}
    assert api.post("/v1/payments", json=body).status_code == 201


def test_a_caller_trace_id_holding_a_card_number_is_not_joined(api: httpx.Client) -> None:
    pan = "4242424242424242"
    caller = f"ab{pan}cdef0123456789"  # 32 hex digits
    with captured() as logs:
        theirs = api.post(
            "/v1/payments", json=BODY, headers={"traceparent": f"00-{caller}-00f067aa0ba902b7-01"}
        )
    assert theirs.status_code == 201
    assert theirs.headers["x-trace-id"] != caller
    assert theirs.json()["trace_id"] == theirs.headers["x-trace-id"]
    assert not logs.holds(pan)
    fine = "0af7651916cd43dd8448eb211c80319c"
    joined = api.post(
        "/v1/payments", json=BODY, headers={"traceparent": f"00-{fine}-00f067aa0ba902b7-01"}
    )
    assert joined.headers["x-trace-id"] == fine
