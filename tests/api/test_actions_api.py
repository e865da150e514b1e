"""3-D Secure, cancel and compensation over real HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import sqlalchemy as sa

from paymend.domain.ids import MerchantId
from paymend.store import merchants
from paymend.store.tables import audit_log, compensations
from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import NOW, count_rows


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


GRANT = {"kind": "credit", "amount": 500, "reason": "paid twice by mistake", "granted_by": "a-1"}


def _failed(api: httpx.Client, order: str, amount: int = 1999) -> dict[str, Any]:
    body = {**BODY, "order_id": order, "amount": amount}
    created = api.post("/v1/payments", json={**body, "payment_token": "sim_decline_do_not_honor"})
    assert created.json()["status"] == "failed", created.text
    result: dict[str, Any] = created.json()
    return result


def test_compensations_only_where_something_went_wrong(server: Server, api: httpx.Client) -> None:
    """A coupon makes up for a failed or delayed payment; one that went through at once,
    or one the shop canceled, has nothing to make up for."""
    clean = api.post("/v1/payments", json={**BODY, "order_id": "comp-clean"}).json()
    assert clean["status"] == "succeeded"
    waiting = api.post(
        "/v1/payments", json={**BODY, "order_id": "comp-cancel", "payment_token": "sim_3ds"}
    ).json()
    canceled = api.post(f"/v1/payments/{waiting['id']}/cancel").json()
    assert canceled["status"] == "canceled"
    before = count_rows(server.runtime.store)
    for payment in (clean, canceled):
        refused = api.post(f"/v1/payments/{payment['id']}/compensations", json=GRANT)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "compensation_not_applicable"
    assert count_rows(server.runtime.store) == before
    requires_action = api.post(
        "/v1/payments", json={**BODY, "order_id": "comp-3ds", "payment_token": "sim_3ds"}
    ).json()
    granted = api.post(f"/v1/payments/{requires_action['id']}/compensations", json=GRANT)
    assert granted.status_code == 201, granted.text


def test_compensations_stay_within_the_merchants_cap(server: Server, api: httpx.Client) -> None:
    failed = _failed(api, "comp-cap", amount=1999)
    url = f"/v1/payments/{failed['id']}/compensations"
    assert api.post(url, json={**GRANT, "amount": 1500}).status_code == 201
    before = count_rows(server.runtime.store)
    over = api.post(url, json={**GRANT, "amount": 500})  # 2,000 > 1,999: the default cap
    assert over.status_code == 400, over.text
    error = over.json()["error"]
    assert (error["code"], error["param"]) == ("compensation_exceeds_cap", "amount")
    assert "499 remain" in error["message"]
    assert count_rows(server.runtime.store) == before
    assert api.post(url, json={**GRANT, "amount": 499}).status_code == 201

    # a shop that caps compensations at 10% of the payment
    def create(conn: sa.Connection) -> tuple[object, str]:
        settings = {"compensation_cap_percent": 10}
        return merchants.create(conn, MerchantId("mer_frugal"), "frugal", NOW, settings)

    _, key = server.runtime.store.run_sync(create)
    with server.client(key) as frugal:
        small = _failed(frugal, "comp-frugal", amount=1999)
        url = f"/v1/payments/{small['id']}/compensations"
        refused = frugal.post(url, json={**GRANT, "amount": 200})
        assert refused.json()["error"]["code"] == "compensation_exceeds_cap"
        assert frugal.post(url, json={**GRANT, "amount": 199}).status_code == 201


def test_concurrent_grants_never_pass_the_cap_together(server: Server, api: httpx.Client) -> None:
    failed = _failed(api, "comp-race", amount=1999)
    url = f"/v1/payments/{failed['id']}/compensations"

    def grant(i: int) -> int:
        with server.client() as client:
            body = {**GRANT, "amount": 600, "granted_by": f"agent-{i}"}
            return client.post(url, json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(grant, range(8)))
    assert sorted(statuses) == [201] * 3 + [400] * 5, statuses
    rows = server.runtime.store.run_sync(
        lambda conn: conn.execute(
            sa.select(compensations.c.amount).where(compensations.c.payment_id == failed["id"])
        ).all()
    )
    assert sum(r.amount for r in rows) == 1800


def test_a_grant_is_audit_logged_under_the_shop_and_its_agent(
    server: Server, api: httpx.Client
) -> None:
    failed = _failed(api, "comp-audit")
    api.post(f"/v1/payments/{failed['id']}/compensations", json=GRANT).raise_for_status()
    entries = server.runtime.store.run_sync(
        lambda conn: conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).all()
    )
    (entry,) = [e for e in entries if e.action == "compensation.grant"]
    assert entry.actor == f"merchant:{server.merchant_id}/a-1"
    assert entry.target == f"payment:{failed['id']}"
    assert entry.reason == GRANT["reason"]
    assert entry.details["amount"] == 500
