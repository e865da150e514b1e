"""Odd input is a 400 naming the parameter, never a server error: NUL and other control
characters anywhere, unpaired surrogates, JSON nested past the limit. Nothing is written
and no log line holds the request's token, its metadata or a traceback. A real server
on SQLite and PostgreSQL (where a NUL used to be a 500 whose log line carried the SQL
parameters)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import count_rows
from tests.logs import Captured, captured

TOKEN = "tok_live_secret_4f9a7c"
META = "meta-secret-8d2b"
SECRET_BODY: dict[str, Any] = {**BODY, "payment_token": TOKEN, "metadata": {"cart": META}}


def with_(path: str, value: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(SECRET_BODY))
    node = body
    *parents, last = path.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return body


# (case, body, param)
BODIES: list[tuple[str, dict[str, Any], str | None]] = [
    ("NUL in order_id", with_("order_id", "order\x001"), "order_id"),
    ("NUL in customer.id", with_("customer.id", "c\x00"), "customer.id"),
    ("NUL in bank", with_("bank", "ICBC\x00"), "bank"),
    ("NUL in payment_token", with_("payment_token", TOKEN + "\x00"), "payment_token"),
    ("NUL in a metadata value", with_("metadata.note", "a\x00b"), "metadata.note"),
    ("NUL in a metadata key", with_("metadata", {"a\x00b": META}), "metadata"),
    ("NUL in a top-level key", {**SECRET_BODY, "x\x00": 1}, None),
    ("escape in region", with_("region", "CN\x1b[31m"), "region"),
    ("line break in order_id", with_("order_id", "order-1\n"), "order_id"),
    ("DEL in customer.email", with_("customer.email", "li\x7f@example.com"), "customer.email"),
    ("C1 control in metadata", with_("metadata.note", "a\x85b"), "metadata.note"),
]


def assert_clean_logs(logs: Captured) -> None:
    lines = logs.lines()  # every line is JSON
    assert lines
    for secret in (TOKEN, META, "Traceback", "psycopg", "sqlalchemy"):
        assert not logs.holds(secret), secret
    assert not [line for line in lines if line["level"] in ("error", "critical")]


@pytest.mark.parametrize(("case", "body", "param"), BODIES, ids=[c[0] for c in BODIES])
def test_control_characters_in_a_body_are_a_400_naming_the_param(
    server: Server, api: httpx.Client, case: str, body: dict[str, Any], param: str | None
) -> None:
    before = count_rows(server.runtime.store)
    with captured() as logs:
        response = api.post("/v1/payments", json=body, headers={"Idempotency-Key": "k-odd"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("parameter_invalid", param)
    assert "control character (U+" in error["message"]
    assert count_rows(server.runtime.store) == before
    assert_clean_logs(logs)
    # free text keeps its tabs and line breaks
    fine = with_("metadata.note", "line one\nline two\tend")
    assert api.post("/v1/payments", json=fine).status_code == 201


def test_unpaired_surrogates_are_refused(server: Server, api: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    raw = json.dumps(with_("metadata.note", "PLACEHOLDER")).replace("PLACEHOLDER", "\\ud800x")
    with captured() as logs:
        response = api.post(
            "/v1/payments", content=raw.encode(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "metadata.note"
    assert "surrogate" in response.json()["error"]["message"]
    assert count_rows(server.runtime.store) == before
    assert_clean_logs(logs)


def test_control_characters_in_paths_queries_and_refunds(server: Server, api: httpx.Client) -> None:
    payment = api.post("/v1/payments", json=SECRET_BODY).json()
    before = count_rows(server.runtime.store)
    with captured() as logs:
        cases = [
            (api.get("/v1/payments/pay%00x"), "payment_id"),
            (api.get("/v1/payments", params={"order_id": "o\x00"}), "order_id"),
            (api.post("/v1/payments/pay%00x/cancel"), "payment_id"),
            (api.post(f"/v1/payments/{payment['id']}/refunds", json={"reason": "a\x00"}), "reason"),
            (api.post("/v1/payments/pay%01x/refunds", json={"amount": 1}), "payment_id"),
        ]
    for response, param in cases:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "parameter_invalid"
        assert response.json()["error"]["param"] == param
    assert count_rows(server.runtime.store) == before
    assert_clean_logs(logs)


@pytest.mark.parametrize(
    ("case", "raw"),
    [
        ("arrays", b"[" * 30_000 + b"]" * 30_000),
        ("objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
        (
            "inside metadata",
            json.dumps(with_("metadata.deep", "X"))
            .encode()
            .replace(b'"X"', b"[" * 500 + b"]" * 500),
        ),
        ("unclosed", b'{"metadata": ' + b"[" * 30_000),
    ],
)
def test_json_nested_past_the_limit_is_invalid_json(
    server: Server, api: httpx.Client, case: str, raw: bytes
) -> None:
    assert len(raw) < 64 * 1024
    before = count_rows(server.runtime.store)
    with captured() as logs:
        response = api.post(
            "/v1/payments", content=raw, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"
    assert "deeper than 32" in response.json()["error"]["message"]
    assert count_rows(server.runtime.store) == before
    assert_clean_logs(logs)


def test_nesting_within_the_limit_is_read(api: httpx.Client) -> None:
    deep: Any = "leaf"
    for _ in range(20):
        deep = [deep]
    response = api.post("/v1/payments", json={**BODY, "metadata": {"x": deep}})
    assert response.status_code == 400  # metadata values are strings: a validation error
    assert response.json()["error"]["code"] == "parameter_invalid"
