"""One order, at most one payment in flight or paid, unless the merchant asks for split
payments: over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx

from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import count_rows

CONFLICTS = {"order_already_paid", "order_payment_in_progress"}


def post(server: Server, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    with server.client() as client:
        headers = {"Idempotency-Key": key} if key else {}
        return client.post("/v1/payments", json=body, headers=headers)


def test_thirty_parallel_payments_for_one_order_make_one(server: Server) -> None:
    """20 requests with their own keys and 10 without, all at once, for one order."""
    keys: list[str | None] = [f"k-{i}" for i in range(20)] + [None] * 10
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda key: post(server, BODY, key), keys))
    created = [r.json() for r in answers if r.status_code == 201]
    assert len(created) == 1, [r.text for r in answers if r.status_code != 409]
    (paid,) = created
    assert paid["status"] == "succeeded"
    refused = [r.json()["error"] for r in answers if r.status_code != 201]
    assert {r.status_code for r in answers} == {201, 409}
    assert {e["code"] for e in refused} <= CONFLICTS
    assert {e["payment_id"] for e in refused} == {paid["id"]}
    with server.client() as client:
        listed = client.get("/v1/payments", params={"order_id": BODY["order_id"]}).json()
    assert [p["id"] for p in listed["data"]] == [paid["id"]]
    assert server.runtime.simulators["sim_a"].ledger.net_charged(paid["id"]) == BODY["amount"]
    assert len(server.runtime.simulators["sim_a"].ledger.all_charges()) == 1


def test_a_failed_payment_lets_the_customer_pay_again_a_paid_order_does_not(
    server: Server, api: httpx.Client
) -> None:
    declined = api.post("/v1/payments", json={**BODY, "payment_token": "sim_decline_do_not_honor"})
    assert declined.json()["status"] == "failed"
    again = api.post("/v1/payments", json={**BODY, "method": "alipay"})  # another method
    assert again.status_code == 201 and again.json()["status"] == "succeeded"
    before = count_rows(server.runtime.store)
    third = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "third"})
    assert third.status_code == 409
    error = third.json()["error"]
    assert (error["code"], error["payment_id"], error["param"]) == (
        "order_already_paid",
        again.json()["id"],
        "order_id",
    )
    assert error["type"] == "invalid_request_error" and again.json()["id"] in error["message"]
    assert count_rows(server.runtime.store) == before  # refused: nothing written
    # ... and its key was released: the corrected request (the right order) may use it
    fixed = api.post(
        "/v1/payments",
        json={**BODY, "order_id": "order-1002"},
        headers={"Idempotency-Key": "third"},
    )
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers


def test_a_payment_waiting_for_the_customer_holds_the_order_until_canceled(
    api: httpx.Client,
) -> None:
    waiting = api.post("/v1/payments", json={**BODY, "payment_token": "sim_3ds"}).json()
    assert waiting["status"] == "requires_action"
    busy = api.post("/v1/payments", json=BODY)
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "order_payment_in_progress"
    assert busy.json()["error"]["payment_id"] == waiting["id"]
    api.post(f"/v1/payments/{waiting['id']}/cancel")
    assert api.post("/v1/payments", json=BODY).json()["status"] == "succeeded"


def test_a_partly_refunded_order_stays_paid_a_fully_refunded_one_may_be_paid_again(
    api: httpx.Client,
) -> None:
    paid = api.post("/v1/payments", json=BODY).json()
    api.post(f"/v1/payments/{paid['id']}/refunds", json={"amount": 999})
    refused = api.post("/v1/payments", json=BODY).json()["error"]
    assert (refused["code"], refused["payment_id"]) == ("order_already_paid", paid["id"])
    api.post(f"/v1/payments/{paid['id']}/refunds", json={})
    assert api.get(f"/v1/payments/{paid['id']}").json()["status"] == "refunded"
    assert api.post("/v1/payments", json=BODY).json()["status"] == "succeeded"


def test_split_payments_share_an_order_but_never_with_an_exclusive_one(
    api: httpx.Client,
) -> None:
    part = {**BODY, "amount": 1000, "split_payment": True}
    first = api.post("/v1/payments", json=part).json()
    second = api.post("/v1/payments", json={**part, "method": "alipay"}).json()
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    whole = api.post("/v1/payments", json=BODY)  # the order is (partly) paid already
    assert whole.status_code == 409
    assert whole.json()["error"]["code"] == "order_already_paid"
    assert whole.json()["error"]["payment_id"] == first["id"]

    other = {**BODY, "order_id": "order-2002"}
    exclusive = api.post("/v1/payments", json={**other, "payment_token": "sim_3ds"}).json()
    refused = api.post("/v1/payments", json={**other, "split_payment": True})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "order_payment_in_progress"
    assert refused.json()["error"]["payment_id"] == exclusive["id"]
