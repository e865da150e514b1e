"""Operators pause and resume channels, banks and regions; every action is audited."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import count_rows

ADMIN = "admin-secret-for-tests"


@pytest.fixture
def ops(server: Server) -> httpx.Client:
    server.runtime.settings.admin_key = ADMIN
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"})


def test_the_ops_api_needs_the_admin_key(server: Server, api: httpx.Client) -> None:
    off = httpx.get(f"{server.url}/v1/ops/controls")
    assert off.status_code == 503 and off.json()["error"]["code"] == "ops_api_disabled"
    server.runtime.settings.admin_key = ADMIN
    merchant_key = api.get("/v1/ops/controls")  # a merchant's key is not an admin key
    assert merchant_key.status_code == 401
    assert merchant_key.json()["error"]["code"] == "admin_key_invalid"


def test_pausing_a_channel_reroutes_and_resuming_restores(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    paused = ops.post(
        "/v1/ops/controls",
        json={
            "kind": "pause",
            "scope": "channel",
            "value": "sim_a",
            "reason": "acquirer incident",
            "actor": "ops-lin",
        },
    )
    assert paused.status_code == 201, paused.text
    payment = api.post("/v1/payments", json=BODY).json()
    assert payment["status"] == "succeeded"
    assert [a["provider"] for a in payment["attempts"]] == ["sim_b"]
    assert "paused by ops" in payment["attempts"][0]["reason"]
    ended = ops.post(
        f"/v1/ops/controls/{paused.json()['id']}/end",
        json={"reason": "acquirer fixed", "actor": "ops-lin"},
    )
    assert ended.status_code == 200
    again = api.post("/v1/payments", json={**BODY, "order_id": "order-1002"}).json()
    assert [a["provider"] for a in again["attempts"]] == ["sim_a"]
    audit = ops.get("/v1/ops/audit").json()["data"]
    assert [(e["action"], e["actor"], e["target"]) for e in audit] == [
        ("control.pause.end", "ops-lin", "channel:sim_a"),
        ("control.pause", "ops-lin", "channel:sim_a"),
    ]
    assert audit[1]["reason"] == "acquirer incident"


def test_a_paused_bank_fails_fast_with_a_message_to_use_another_method(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    ops.post(
        "/v1/ops/controls",
        json={
            "kind": "pause",
            "scope": "bank",
            "value": "ICBC",
            "method": "card",
            "reason": "bank maintenance",
            "actor": "ops-lin",
        },
    )
    refused = api.post("/v1/payments", json=BODY, headers={"Accept-Language": "en"}).json()
    assert refused["status"] == "failed" and refused["attempts"] == []
    assert refused["failure"]["code"] == "issuer_unavailable"
    assert any("method" in s.lower() for s in refused["failure"]["suggestions"])
    assert server.runtime.simulators["sim_a"].calls == 0
    other_bank = api.post("/v1/payments", json={**BODY, "bank": "CMB"}).json()
    assert other_bank["status"] == "succeeded"
    wallet = api.post(
        "/v1/payments", json={**BODY, "method": "alipay", "order_id": "order-1002"}
    ).json()
    assert wallet["status"] == "succeeded"  # the pause was for cards only


def test_forcing_a_route(api: httpx.Client, ops: httpx.Client) -> None:
    ops.post(
        "/v1/ops/controls",
        json={
            "kind": "force_route",
            "scope": "channel",
            "value": "sim_b",
            "method": "card",
            "reason": "cheaper today",
            "actor": "ops-wang",
        },
    )
    payment = api.post("/v1/payments", json=BODY).json()
    assert payment["attempts"][0]["provider"] == "sim_b"


def test_bad_controls_change_nothing(server: Server, ops: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    cases = [
        (
            {"kind": "force_route", "scope": "bank", "value": "ICBC", "reason": "x", "actor": "a"},
            "control_invalid",
        ),
        (
            {"kind": "pause", "scope": "channel", "value": "sim_z", "reason": "x", "actor": "a"},
            "channel_unknown",
        ),
        (
            {"kind": "pause", "scope": "channel", "value": "sim_a", "reason": "", "actor": "a"},
            "parameter_invalid",
        ),
        (
            {"kind": "pause", "scope": "channel", "value": "sim_a", "reason": "x"},
            "parameter_missing",
        ),
    ]
    for body, code in cases:
        response = ops.post("/v1/ops/controls", json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == code, body
    missing = ops.post("/v1/ops/controls/ctl_nope/end", json={"reason": "x", "actor": "a"})
    assert missing.status_code == 404
    assert count_rows(server.runtime.store) == before


def test_held_payments_wait_in_the_queue_until_ops_release_or_reject(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    hold = ops.post(
        "/v1/ops/controls",
        json={
            "kind": "hold",
            "scope": "bank",
            "value": "CMB",
            "amount_above": 100_00,
            "reason": "CMB errors: review large payments",
            "actor": "ops-lin",
        },
    )
    assert hold.status_code == 201, hold.text
    assert hold.json()["amount_above"] == 100_00
    large = {**BODY, "bank": "CMB", "amount": 500_00}
    first = api.post("/v1/payments", json={**large, "order_id": "o-h1"}).json()
    second = api.post("/v1/payments", json={**large, "order_id": "o-h2"}).json()
    assert first["status"] == "held" and first["attempts"] == []
    assert first["next_action"]["type"] == "wait_for_review"
    queue = ops.get("/v1/ops/payments/held").json()["data"]
    assert [p["id"] for p in queue] == [first["id"], second["id"]]
    calls = server.runtime.simulators["sim_a"].calls

    released = ops.post(
        f"/v1/ops/payments/{first['id']}/release",
        json={"reason": "customer verified", "actor": "ops-lin"},
    )
    assert released.status_code == 200 and released.json()["status"] == "succeeded"
    rejected = ops.post(
        f"/v1/ops/payments/{second['id']}/reject",
        json={"reason": "no answer", "actor": "ops-lin"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "failed"
    assert server.runtime.simulators["sim_a"].calls == calls + 1
    before = count_rows(server.runtime.store)
    twice = ops.post(
        f"/v1/ops/payments/{second['id']}/release", json={"reason": "r", "actor": "ops-lin"}
    )
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "payment_not_held"
    assert count_rows(server.runtime.store) == before
    seen = api.get(f"/v1/payments/{second['id']}").json()
    assert seen["failure"]["code"] == "generic_decline"  # the review is never named
    audit = [e["action"] for e in ops.get("/v1/ops/audit").json()["data"]]
    assert audit[:3] == ["payment.reject", "payment.release", "control.hold"]


def test_a_hold_without_an_amount_is_refused(server: Server, ops: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    refused = ops.post(
        "/v1/ops/controls",
        json={"kind": "hold", "scope": "bank", "value": "CMB", "reason": "r", "actor": "a"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "amount_above"
    assert count_rows(server.runtime.store) == before


def test_bad_reviews_change_nothing(server: Server, ops: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    unknown = ops.post("/v1/ops/payments/pay_nope/release", json={"reason": "r", "actor": "a"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "payment_not_found"
    no_actor = ops.post("/v1/ops/payments/pay_nope/reject", json={"reason": "r"})
    assert no_actor.status_code == 400
    assert no_actor.json()["error"]["code"] == "parameter_missing"
    negative = ops.post(
        "/v1/ops/controls",
        json={
            "kind": "hold",
            "scope": "bank",
            "value": "CMB",
            "amount_above": -1,
            "reason": "r",
            "actor": "a",
        },
    )
    assert negative.status_code == 400 and negative.json()["error"]["param"] == "amount_above"
    assert count_rows(server.runtime.store) == before
