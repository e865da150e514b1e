"""The merchant API end to end over real HTTP: pay, read, list, refund."""

from __future__ import annotations

import concurrent.futures
import io
import json
from typing import Any

import httpx

from paymend.observability import configure_logging
from tests.api.conftest import Server
from tests.helpers import WAIT_S, count_rows

BODY: dict[str, Any] = {
    "amount": 1999,
    "currency": "CNY",
    "method": "card",
    "order_id": "order-1001",
    "bank": "ICBC",
    "region": "CN-East",
    "payment_token": "tok_visa_abcdef123456",
    "customer": {
        "id": "c-42",
        "locale": "zh-CN",
        "phone": "+8613812345678",
        "email": "li@example.com",
    },
    "metadata": {"cart": "7 items"},
}


def test_a_payment_made_over_http_shows_its_attempt_timeline(api: httpx.Client) -> None:
    created = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-1"})
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "succeeded"
    assert payment["amount"] == 1999 and payment["amount_display"] == "19.99"
    assert payment["customer"]["phone"] == "+86****5678"
    assert payment["payment_token"] == "tok_…3456"
    assert len(created.headers["x-trace-id"]) == 32

    got = api.get(f"/v1/payments/{payment['id']}").json()
    (attempt,) = got["attempts"]
    assert attempt["provider"] == "sim_a"
    assert attempt["status"] == "succeeded"
    assert attempt["raw_code"] == "APPROVED"
    assert attempt["latency_ms"] is not None
    assert attempt["trace_id"] == created.headers["x-trace-id"] == got["trace_id"]

    listed = api.get("/v1/payments", params={"order_id": "order-1001"}).json()
    assert [p["id"] for p in listed["data"]] == [payment["id"]]


def test_a_declined_payment_says_why(api: httpx.Client) -> None:
    body = {**BODY, "payment_token": "sim_decline_expired_card"}
    payment = api.post("/v1/payments", json=body).json()
    assert payment["status"] == "failed"
    failure = payment["failure"]
    assert failure["raw_code"] == "EXPIRED_CARD"
    assert failure["code"] == "expired_card"
    assert failure["kind"] == "business"
    assert failure["locale"] == "zh-CN"  # the customer's locale
    assert failure["title"] and failure["message"] and 1 <= len(failure["suggestions"]) <= 3
    assert failure["help_url"].endswith("/help/expired_card?locale=zh-CN")


def test_a_trace_context_from_the_shop_is_kept(api: httpx.Client) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = api.post(
        "/v1/payments",
        json=BODY,
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    assert response.headers["x-trace-id"] == trace_id
    assert response.json()["attempts"][0]["trace_id"] == trace_id


def test_refunds_partial_then_rest(api: httpx.Client) -> None:
    pid = api.post("/v1/payments", json=BODY).json()["id"]
    part = api.post(
        f"/v1/payments/{pid}/refunds", json={"amount": 999}, headers={"Idempotency-Key": "r-1"}
    )
    assert part.status_code == 201 and part.json()["status"] == "succeeded"
    again = api.post(
        f"/v1/payments/{pid}/refunds", json={"amount": 999}, headers={"Idempotency-Key": "r-1"}
    )
    assert again.json() == part.json()  # replayed, not refunded twice
    assert again.headers["idempotent-replayed"] == "true"
    too_much = api.post(f"/v1/payments/{pid}/refunds", json={"amount": 1001})
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "refund_exceeds_captured"
    rest = api.post(f"/v1/payments/{pid}/refunds", json={})
    assert rest.json()["amount"] == 1000
    final = api.get(f"/v1/payments/{pid}").json()
    assert final["status"] == "refunded" and final["amount_refunded"] == 1999


def test_same_key_same_body_replays_and_other_body_conflicts(
    server: Server, api: httpx.Client
) -> None:
    first = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "same"})
    second = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "same"})
    assert second.status_code == 201
    assert second.json() == first.json()  # the stored answer: the first response's text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.headers["content-type"] == second.headers["content-type"] == "application/json"
    before = count_rows(server.runtime.store)
    other = api.post(
        "/v1/payments", json={**BODY, "amount": 2000}, headers={"Idempotency-Key": "same"}
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert count_rows(server.runtime.store) == before
    assert server.runtime.simulators["sim_a"].calls == 1


def test_a_key_outside_1_to_255_characters_is_refused_and_changes_nothing(
    server: Server, api: httpx.Client
) -> None:
    pid = api.post("/v1/payments", json=BODY).json()["id"]
    before = count_rows(server.runtime.store)
    for key in ("", "k" * 256):
        for path, body in (
            ("/v1/payments", {**BODY, "order_id": "order-1002"}),
            (f"/v1/payments/{pid}/refunds", {"amount": 100}),
            (f"/v1/payments/{pid}/cancel", None),
        ):
            refused = api.post(path, json=body, headers={"Idempotency-Key": key})
            assert refused.status_code == 400, (path, len(key))
            error = refused.json()["error"]
            assert (error["code"], error["param"]) == ("idempotency_key_invalid", "Idempotency-Key")
    assert count_rows(server.runtime.store) == before
    at_most = api.post(
        f"/v1/payments/{pid}/refunds", json={"amount": 100}, headers={"Idempotency-Key": "k" * 255}
    )
    assert at_most.status_code == 201, at_most.text


def test_concurrent_requests_with_one_key_create_one_payment(server: Server) -> None:
    def post(_: int) -> httpx.Response:
        with server.client() as c:
            return c.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "race"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {201, 409}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert count_rows(server.runtime.store)["payments"] == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "idempotency_request_in_progress"


def test_keys_are_scoped_per_merchant(server: Server, api: httpx.Client) -> None:
    from tests.helpers import make_merchant

    _, other_key = make_merchant(server.runtime.store, "other")
    pid = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k"}).json()["id"]
    with server.client(other_key) as other:
        assert other.get(f"/v1/payments/{pid}").status_code == 404
        mine = other.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k"}).json()
        assert mine["id"] != pid


def test_docs_health_and_metrics(server: Server, api: httpx.Client) -> None:
    api.post("/v1/payments", json=BODY)
    assert httpx.get(f"{server.url}/docs", timeout=WAIT_S).status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json", timeout=WAIT_S).json()
    assert "/v1/payments" in spec["paths"]
    assert httpx.get(f"{server.url}/healthz", timeout=WAIT_S).json() == {
        "status": "ok",
        "database": "ok",
    }
    metrics = httpx.get(f"{server.url}/metrics", timeout=WAIT_S).text
    assert 'paymend_payments_total{provider="sim_a",status="succeeded"}' in metrics
    assert "paymend_attempt_latency_seconds_bucket" in metrics
    assert (
        'paymend_attempts_total{outcome="succeeded",provider="sim_a",raw_code="APPROVED"}'
        in metrics
    )


def test_logs_are_json_and_mask_pii(api: httpx.Client) -> None:
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    try:
        api.post("/v1/payments", json=BODY)
        api.post("/v1/payments", json={**BODY, "metadata": {"n": "4111 1111 1111 1111"}})
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    calls = [e for e in lines if e["event"] == "provider_call"]
    assert calls and {
        "payment_id",
        "attempt_id",
        "provider",
        "raw_code",
        "latency_ms",
        "trace_id",
    } <= set(calls[0])
    text = buffer.getvalue()
    for secret in ("13812345678", "li@example.com", "tok_visa_abcdef123456", "4111"):
        assert secret not in text
