"""3-D Secure, cancel and compensation over real HTTP."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import count_rows


def test_3ds_next_action_then_confirm(api: httpx.Client) -> None:
    created = api.post("/v1/payments", json={**BODY, "payment_token": "sim_3ds"}).json()
    assert created["status"] == "requires_action"
    action = created["next_action"]
    assert action["type"] == "authenticate"
    assert action["confirm_url"] == f"/v1/payments/{created['id']}/confirm"
    confirmed = api.post(action["confirm_url"], headers={"Idempotency-Key": "c-1"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    assert confirmed.json()["next_action"] is None
    replay = api.post(action["confirm_url"], headers={"Idempotency-Key": "c-1"})
    assert replay.json() == confirmed.json()
    again = api.post(action["confirm_url"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "payment_not_awaiting_action"


def test_cancel_only_what_is_not_final(api: httpx.Client) -> None:
    waiting = api.post("/v1/payments", json={**BODY, "payment_token": "sim_3ds"}).json()
    canceled = api.post(f"/v1/payments/{waiting['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    paid = api.post("/v1/payments", json=BODY).json()
    refused = api.post(f"/v1/payments/{paid['id']}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "payment_not_cancelable"


def test_support_grants_a_compensation(server: Server, api: httpx.Client) -> None:
    failed = api.post(
        "/v1/payments", json={**BODY, "payment_token": "sim_decline_do_not_honor"}
    ).json()
    body = {
        "kind": "coupon",
        "amount": 500,
        "reason": "payment failed twice",
        "granted_by": "agent-7",
    }
    granted = api.post(f"/v1/payments/{failed['id']}/compensations", json=body)
    assert granted.status_code == 201, granted.text
    comp = granted.json()
    assert (comp["kind"], comp["amount"], comp["currency"], comp["granted_by"]) == (
        "coupon",
        500,
        "CNY",
        "agent-7",
    )
    before = count_rows(server.runtime.store)
    for bad, code in (
        ({**body, "amount": 0}, "amount_too_small"),
        ({**body, "kind": "cash"}, "parameter_invalid"),
        ({**body, "granted_by": ""}, "parameter_invalid"),
        ({k: v for k, v in body.items() if k != "reason"}, "parameter_missing"),
    ):
        response = api.post(f"/v1/payments/{failed['id']}/compensations", json=bad)
        assert response.status_code == 400 and response.json()["error"]["code"] == code, bad
    missing = api.post("/v1/payments/pay_nope/compensations", json=body)
    assert missing.status_code == 404
    assert count_rows(server.runtime.store) == before
