"""Listing and searching over real HTTP: payments by filter, a payment's refunds, events;
newest first, page by page with `starting_after`, each merchant seeing only its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import count_rows, make_merchant

# (order, token, method, customer): a mix of statuses, channels and customers
MIX = [
    ("l-1", "tok_ok_1", "card", "c-1"),
    ("l-2", "sim_decline_do_not_honor", "card", "c-2"),
    ("l-3", "sim_3ds", "card", "c-1"),
    ("l-4", "tok_ok_4", "wechat_pay", "c-3"),  # only sim_b takes WeChat Pay
    ("l-5", "sim_decline_insufficient_funds", "card", "c-1"),
    ("l-6", "tok_ok_6", "card", "c-2"),
    ("l-7", "sim_decline_do_not_honor", "wechat_pay", "c-3"),
]


def _pay(api: httpx.Client, order: str, token: str, method: str, customer: str) -> dict[str, Any]:
    body = {
        **BODY,
        "order_id": order,
        "payment_token": token,
        "method": method,
        "customer": {**BODY["customer"], "id": customer},
    }
    created = api.post("/v1/payments", json=body)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


@pytest.fixture
def made(api: httpx.Client) -> list[dict[str, Any]]:
    return [_pay(api, *row) for row in MIX]


def _newest_first(payments: list[dict[str, Any]]) -> list[str]:
    ordered = sorted(payments, key=lambda p: (p["created_at"], p["id"]), reverse=True)
    return [p["id"] for p in ordered]


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]]


def test_pages_walk_every_payment_once_newest_first(
    api: httpx.Client, made: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if after:
            params["starting_after"] = after
        page = api.get("/v1/payments", params=params).json()
        seen += [p["id"] for p in page["data"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_starting_after"] is None
            break
        after = page["next_starting_after"]
        assert after == page["data"][-1]["id"]
    assert pages == 3  # 3 + 3 + 1
    assert seen == _newest_first(made)


def test_every_filter_narrows_the_list(api: httpx.Client, made: list[dict[str, Any]]) -> None:
    by_order = {p["order_id"]: p for p in made}

    def expect(*orders: str) -> list[str]:
        return _newest_first([by_order[o] for o in orders])

    assert _ids(api.get("/v1/payments", params={"status": "failed"})) == expect("l-2", "l-5", "l-7")
    both = api.get("/v1/payments", params=[("status", "failed"), ("status", "requires_action")])
    assert _ids(both) == expect("l-2", "l-3", "l-5", "l-7")
    assert _ids(api.get("/v1/payments", params={"customer_id": "c-1"})) == expect(
        "l-1", "l-3", "l-5"
    )
    assert _ids(api.get("/v1/payments", params={"channel": "sim_b"})) == expect("l-4", "l-7")
    declined = by_order["l-2"]["failure"]["code"]  # DO_NOT_HONOR's unified code
    assert by_order["l-5"]["failure"]["code"] != declined
    assert _ids(api.get("/v1/payments", params={"failure_code": declined})) == expect("l-2", "l-7")
    assert _ids(api.get("/v1/payments", params={"order_id": "l-6"})) == expect("l-6")
    combined = {"customer_id": "c-3", "status": "failed"}
    assert _ids(api.get("/v1/payments", params=combined)) == expect("l-7")
    # a time window: from the third payment's creation, before the sixth's
    window = {
        "created_gte": by_order["l-3"]["created_at"],
        "created_lt": by_order["l-6"]["created_at"],
    }
    assert _ids(api.get("/v1/payments", params=window)) == expect("l-3", "l-4", "l-5")


def test_bad_list_parameters_are_400_naming_the_parameter(
    server: Server, api: httpx.Client, made: list[dict[str, Any]]
) -> None:
    before = count_rows(server.runtime.store)
    _, other_key = make_merchant(server.runtime.store, "other")
    with server.client(other_key) as other:
        theirs = _pay(other, "theirs", "tok_ok", "card", "x")["id"]
    for params, param in (
        ({"status": "paid"}, "status"),
        ({"created_gte": "2026-03-01T12:00:00"}, "created_gte"),  # no zone: ambiguous
        ({"created_lt": "yesterday"}, "created_lt"),
        ({"created_lt": "0.5"}, "created_lt"),  # not read as a Unix time
        ({"created_gte": "1764000000"}, "created_gte"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"starting_after": "pay_nope"}, "starting_after"),
        ({"starting_after": theirs}, "starting_after"),  # another merchant's payment
    ):
        response = api.get("/v1/payments", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["param"] == param, params
    assert count_rows(server.runtime.store)["payments"] == before["payments"] + 1


def test_each_merchant_lists_only_its_own(server: Server, made: list[dict[str, Any]]) -> None:
    _, other_key = make_merchant(server.runtime.store, "other")
    with server.client(other_key) as other:
        assert _ids(other.get("/v1/payments")) == []
        assert _ids(other.get("/v1/events")) == []
        assert other.get(f"/v1/payments/{made[0]['id']}/refunds").status_code == 404


def test_a_payments_refunds_oldest_first(api: httpx.Client) -> None:
    paid = _pay(api, "l-refunds", "tok_ok", "card", "c-9")
    first = api.post(f"/v1/payments/{paid['id']}/refunds", json={"amount": 500}).json()
    rest = api.post(f"/v1/payments/{paid['id']}/refunds", json={}).json()
    listed = api.get(f"/v1/payments/{paid['id']}/refunds").json()
    assert [r["id"] for r in listed["data"]] == [first["id"], rest["id"]]
    assert [r["amount"] for r in listed["data"]] == [500, 1499]
    assert listed["has_more"] is False
    assert api.get("/v1/payments/pay_nope/refunds").status_code == 404


def test_events_newest_first_filtered_and_paged(api: httpx.Client) -> None:
    paid = _pay(api, "l-ev-1", "tok_ok", "card", "c-1")
    failed = _pay(api, "l-ev-2", "sim_decline_do_not_honor", "card", "c-1")
    everything = api.get("/v1/events", params={"limit": 100}).json()["data"]
    assert [e["object"] for e in everything] == ["event"] * len(everything)
    created = [e["created"] for e in everything]
    assert created == sorted(created, reverse=True)
    assert everything[0]["type"] == "payment.failed"
    assert everything[0]["data"]["payment_id"] == failed["id"]

    only_failed = api.get("/v1/events", params={"type": "payment.failed"}).json()["data"]
    assert [e["data"]["payment_id"] for e in only_failed] == [failed["id"]]
    of_paid = api.get("/v1/events", params={"payment_id": paid["id"]}).json()["data"]
    assert {e["type"] for e in of_paid} == {
        "payment.created",
        "attempt.finished",
        "payment.succeeded",
    }

    walked: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"starting_after": after} if after else {})}
        page = api.get("/v1/events", params=params).json()
        walked += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        after = page["next_starting_after"]
    assert walked == [e["id"] for e in everything]

    one = api.get(f"/v1/events/{everything[-1]['id']}")
    assert one.status_code == 200 and one.json() == everything[-1]
    assert api.get("/v1/events/evt_nope").json()["error"]["code"] == "event_not_found"
    unknown_cursor = api.get("/v1/events", params={"starting_after": "evt_nope"})
    assert unknown_cursor.status_code == 400
