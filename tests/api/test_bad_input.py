"""Every bad input gets a 4xx with a stable code and a message, and writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from tests.api.conftest import CONFIG, Server, serve
from tests.api.test_payments_api import BODY
from tests.helpers import WAIT_S, count_rows


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in BODY.items() if k != key}


CASES: list[tuple[str, Any, int, str, str | None]] = [
    # (case, body, status, code, param)
    ("negative amount", {**BODY, "amount": -1}, 400, "amount_too_small", "amount"),
    ("zero amount", {**BODY, "amount": 0}, 400, "amount_too_small", "amount"),
    ("fractional amount", {**BODY, "amount": 19.99}, 400, "amount_invalid", "amount"),
    ("float that looks whole", {**BODY, "amount": 100.0}, 400, "amount_invalid", "amount"),
    ("amount as a string", {**BODY, "amount": "1999"}, 400, "amount_invalid", "amount"),
    ("absurd amount", {**BODY, "amount": 10**13}, 400, "amount_too_large", "amount"),
    ("unknown currency", {**BODY, "currency": "XYZ"}, 400, "currency_unsupported", "currency"),
    ("currency too long", {**BODY, "currency": "YUAN"}, 400, "parameter_invalid", "currency"),
    ("missing amount", without("amount"), 400, "parameter_missing", "amount"),
    ("missing order", without("order_id"), 400, "parameter_missing", "order_id"),
    ("extra field", {**BODY, "tip": 5}, 400, "parameter_unknown", "tip"),
    (
        "extra nested field",
        {**BODY, "customer": {"id": "c", "age": 3}},
        400,
        "parameter_unknown",
        "customer.age",
    ),
    ("unknown method", {**BODY, "method": "cash"}, 400, "payment_method_unsupported", "method"),
    (
        "bad locale",
        {**BODY, "customer": {"locale": "not a locale"}},
        400,
        "parameter_invalid",
        "customer.locale",
    ),
    (
        "bad email",
        {**BODY, "customer": {"email": "nope"}},
        400,
        "parameter_invalid",
        "customer.email",
    ),
    (
        "card number field",
        {**BODY, "card_number": "4111111111111111"},
        400,
        "card_data_not_allowed",
        "card_number",
    ),
    ("cvv field", {**BODY, "cvv": "123"}, 400, "card_data_not_allowed", "cvv"),
    (
        "card number as token",
        {**BODY, "payment_token": "4242424242424242"},
        400,
        "card_data_not_allowed",
        "payment_token",
    ),
    (
        "card number in metadata",
        {**BODY, "metadata": {"n": "5555-5555-5555-4444"}},
        400,
        "card_data_not_allowed",
        "metadata.n",
    ),
    (
        "too much metadata",
        {**BODY, "metadata": {f"k{i}": "v" for i in range(51)}},
        400,
        "parameter_invalid",
        "metadata",
    ),
    ("array body", [BODY], 400, "invalid_json", None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code", "param"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_payment_requests_change_nothing(
    server: Server,
    api: httpx.Client,
    case: str,
    body: Any,
    status: int,
    code: str,
    param: str | None,
) -> None:
    before = count_rows(server.runtime.store)
    response = api.post("/v1/payments", json=body, headers={"Idempotency-Key": f"bad-{case}"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"] and error["type"]
    assert count_rows(server.runtime.store) == before
    # the key was not burnt by the refused request: a corrected one goes through
    fixed = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": f"bad-{case}"})
    assert fixed.status_code == 201


def test_invalid_json_wrong_type_and_oversized_bodies(server: Server, api: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    broken = api.post(
        "/v1/payments", content=b'{"amount": 1', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    form = api.post("/v1/payments", data={"amount": "1"})
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    big = api.post("/v1/payments", json={**BODY, "metadata": {"x": "y" * 500}, "pad": "z" * 70_000})
    assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
    raw_pan = api.post(
        "/v1/payments",
        content=b"card=4111111111111111",
        headers={"Content-Type": "application/json"},
    )
    assert raw_pan.status_code == 400 and raw_pan.json()["error"]["code"] == "card_data_not_allowed"
    assert count_rows(server.runtime.store) == before


def test_authentication_is_required(server: Server) -> None:
    before = count_rows(server.runtime.store)
    none = httpx.post(f"{server.url}/v1/payments", json=BODY, timeout=WAIT_S)
    assert none.status_code == 401 and none.json()["error"]["code"] == "api_key_missing"
    wrong = httpx.post(
        f"{server.url}/v1/payments",
        json=BODY,
        headers={"Authorization": "Bearer sk_nope"},
        timeout=WAIT_S,
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "api_key_invalid"
    assert count_rows(server.runtime.store) == before


def test_bad_refunds_change_nothing(server: Server, api: httpx.Client) -> None:
    failed = api.post(
        "/v1/payments", json={**BODY, "payment_token": "sim_decline_do_not_honor"}
    ).json()
    ok = api.post("/v1/payments", json=BODY).json()
    before = count_rows(server.runtime.store)
    cases = [
        (failed["id"], {"amount": 100}, 409, "payment_not_refundable"),
        (ok["id"], {"amount": 0}, 400, "amount_too_small"),
        (ok["id"], {"amount": -5}, 400, "amount_too_small"),
        (ok["id"], {"amount": 1.5}, 400, "amount_invalid"),
        (ok["id"], {"amount": None}, 400, "amount_invalid"),  # not "refund everything"
        (ok["id"], {"amount": 2000}, 400, "refund_exceeds_captured"),
        (ok["id"], {"amount": 10, "why": "x"}, 400, "parameter_unknown"),
        ("pay_missing", {"amount": 10}, 404, "payment_not_found"),
    ]
    for pid, body, status, code in cases:
        response = api.post(f"/v1/payments/{pid}/refunds", json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert count_rows(server.runtime.store) == before


def test_unknown_routes_and_payments_are_404_json(api: httpx.Client) -> None:
    assert api.get("/v1/payments/pay_nope").json()["error"]["code"] == "payment_not_found"
    missing = api.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get("/v1/payments", params={"order_id": ""}).json()["error"]["param"] == "order_id"


def test_a_method_a_path_does_not_take_is_405_naming_every_method_it_does(
    api: httpx.Client,
) -> None:
    """`Allow` lists all the path's methods (RFC 9110), not those of one of its routes."""
    for method, path, allowed in (
        ("TRACE", "/v1/payments", "GET, POST"),
        ("DELETE", "/v1/payments/pay_nope", "GET"),
        ("PUT", "/v1/payments/pay_nope/refunds", "GET, POST"),
        ("OPTIONS", "/v1/ops/controls", "GET, POST"),
    ):
        refused = api.request(method, path)
        assert refused.status_code == 405, (method, path)
        assert refused.headers["allow"] == allowed, (method, path)
        assert refused.json()["error"]["code"] == "method_not_allowed"


def test_database_unreachable_is_503_and_writes_nothing(tmp_path: Any) -> None:
    runtime = build_runtime(
        Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"),
        PaymendConfig.model_validate(CONFIG),
    )
    uv, thread, url = serve(runtime)
    try:
        response = httpx.post(
            f"{url}/v1/payments", json=BODY, headers={"Authorization": "Bearer sk_any"}, timeout=30
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert response.headers["retry-after"] == "1"
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 503
        assert runtime.simulators["sim_a"].calls == 0  # no provider was called
    finally:
        uv.should_exit = True
        thread.join(10)
        runtime.close()
