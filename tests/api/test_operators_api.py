"""Operators authenticate with their own keys, by `Authorization: Bearer` only; each
endpoint of the ops API needs a role; admins manage operators and every key, rotating
with an overlap; revoked and expired keys stop. All on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.domain.roles import ROLE_NAMES
from paymend.engine.runtime import build_runtime
from paymend.store import keys
from tests.api.conftest import CONFIG, Server, running, running_on
from tests.helpers import NOW, WAIT_S, ManualClock, count_rows, make_operator

PAUSE = {"kind": "pause", "scope": "bank", "value": "CMB", "reason": "maintenance"}
PAUSE["ends_at"] = (NOW + timedelta(days=1)).isoformat()  # the clock starts an hour past NOW
REVIEW = {"cause": "c", "resolution": "r", "lessons": "l"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW + timedelta(hours=1))


@pytest.fixture
def server(db_url: str, clock: ManualClock) -> Iterator[Server]:
    with running_on(db_url, clock) as started:
        yield started


def client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT_S
    )


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with client(server, make_operator(server.runtime.store, "boss", "admin")) as c:
        yield c


# -- authentication --------------------------------------------------------------------


def test_only_a_bearer_operator_key_is_taken(server: Server, api: httpx.Client) -> None:
    key = make_operator(server.runtime.store, "ops-lin", "ops")
    url = f"{server.url}/v1/ops/controls"
    assert (
        httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT_S).status_code
        == 200
    )
    assert (
        httpx.get(url, headers={"Authorization": f"bearer {key}"}, timeout=WAIT_S).status_code
        == 200
    )
    for headers in [
        {},
        {"Authorization": key},
        {"Authorization": f"Basic {key}"},
        {"Authorization": f"Token {key}"},
        {"Authorization": f"Bearer {key} {key}"},
        {"Authorization": "Bearer"},
        {"X-Api-Key": key},
    ]:
        response = httpx.get(url, headers=headers, timeout=WAIT_S)
        assert response.status_code == 401, headers
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("authentication_error", "operator_key_missing")
    for wrong in (key + "x", server.key):  # an unknown key; a merchant's key
        response = httpx.get(url, headers={"Authorization": f"Bearer {wrong}"}, timeout=WAIT_S)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "operator_key_invalid"
    operator_on_merchant_api = httpx.get(
        f"{server.url}/v1/payments",
        params={"order_id": "o"},
        headers={"Authorization": key},
        timeout=WAIT_S,
    )
    assert operator_on_merchant_api.status_code == 401


def test_the_ops_api_no_longer_takes_the_admin_key(db_url: str) -> None:
    settings = Settings(database_url=db_url, admin_key="admin-secret-for-tests")
    runtime = build_runtime(settings, PaymendConfig.model_validate(CONFIG))
    with running(runtime) as started:
        response = httpx.get(
            f"{started.url}/v1/ops/controls",
            headers={"Authorization": "Bearer admin-secret-for-tests"},
            timeout=WAIT_S,
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "operator_key_invalid"


# -- roles -----------------------------------------------------------------------------

# every endpoint of the ops API, with the least role that may call it; a call a role is
# allowed answers anything but 401/403 (unknown ids give 404), a refused one 403
SILENCE = {"channel": "sim_a", "until": "2030-01-01T00:00:00Z", "reason": "r"}
RISK_ENTRY = {"kind": "ip", "value": "203.0.113.9", "action": "block", "reason": "r"}
MATRIX: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/v1/ops/me", None, "viewer"),
    ("GET", "/v1/ops/controls", None, "viewer"),
    ("GET", "/v1/ops/audit", None, "viewer"),
    ("GET", "/v1/ops/incidents", None, "viewer"),
    ("GET", "/v1/ops/incidents/inc_nope", None, "viewer"),
    ("GET", "/v1/ops/payments/held", None, "support"),
    ("GET", "/v1/ops/payments?merchant_id=mer_shop&order_id=o-1", None, "support"),
    ("GET", "/v1/ops/payments/pay_nope", None, "support"),
    ("POST", "/v1/ops/controls", PAUSE, "ops"),
    ("POST", "/v1/ops/controls/preview", PAUSE, "ops"),
    ("POST", "/v1/ops/controls/ctl_nope/end", {"reason": "r"}, "ops"),
    ("POST", "/v1/ops/payments/pay_nope/release", {"reason": "r"}, "ops"),
    ("POST", "/v1/ops/payments/pay_nope/reject", {"reason": "r"}, "ops"),
    ("POST", "/v1/ops/incidents/inc_nope/acknowledge", {"reason": "r"}, "ops"),
    ("POST", "/v1/ops/incidents/inc_nope/review", REVIEW, "ops"),
    ("GET", "/v1/ops/operators", None, "admin"),
    ("POST", "/v1/ops/operators", {"name": "new-one", "role": "viewer"}, "admin"),
    ("POST", "/v1/ops/operators/nobody/role", {"role": "ops"}, "admin"),
    ("POST", "/v1/ops/operators/nobody/keys", {}, "admin"),
    ("POST", "/v1/ops/operators/nobody/keys/key_x/revoke", {}, "admin"),
    ("GET", "/v1/ops/payments/pay_nope/risk", None, "support"),
    ("GET", "/v1/ops/risk/shadow", None, "viewer"),
    ("GET", "/v1/ops/risk/lists", None, "viewer"),
    ("POST", "/v1/ops/risk/lists", RISK_ENTRY, "ops"),
    ("POST", "/v1/ops/risk/lists/0/remove", {"reason": "r"}, "ops"),
    ("GET", "/v1/ops/silences", None, "viewer"),
    ("POST", "/v1/ops/silences", SILENCE, "ops"),
    ("POST", "/v1/ops/silences/sil_nope/end", {"reason": "r"}, "ops"),
    ("GET", "/v1/ops/merchants/mer_nope/keys", None, "admin"),
    ("POST", "/v1/ops/merchants/mer_nope/keys", {}, "admin"),
    ("POST", "/v1/ops/merchants/mer_nope/keys/key_x/revoke", {}, "admin"),
]


def test_the_matrix_covers_every_ops_endpoint(server: Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=WAIT_S).json()
    routes = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/ops")
        for method in item
    }
    covered = set()
    for method, path, _, needed in MATRIX:
        path = path.split("?")[0]
        path = path.replace("inc_nope", "{incident_id}").replace("pay_nope", "{payment_id}")
        path = path.replace("ctl_nope", "{control_id}").replace("nobody", "{name}")
        path = path.replace("mer_nope", "{merchant}").replace("key_x", "{key_id}")
        path = path.replace("/lists/0/", "/lists/{entry_id}/").replace("sil_nope", "{silence_id}")
        covered.add((method, path))
        description = spec["paths"][path][method.lower()]["description"]
        assert f"**{needed}**" in description, (path, description)  # the docs say it
    assert covered == routes


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_each_role_may_do_what_it_needs_and_nothing_more(server: Server, role: str) -> None:
    rank = ROLE_NAMES.index(role)
    with client(server, make_operator(server.runtime.store, f"{role}-a", role)) as c:
        for method, path, body, needed in MATRIX:
            before = count_rows(server.runtime.store)
            response = c.request(method, path, json=body)
            if rank >= ROLE_NAMES.index(needed):
                assert response.status_code not in (401, 403), (role, path, response.text)
            else:
                assert response.status_code == 403, (role, path, response.text)
                error = response.json()["error"]
                assert (error["type"], error["code"]) == ("permission_error", "role_insufficient")
                assert needed in error["message"] and role in error["message"]
                assert count_rows(server.runtime.store) == before, (role, path)


def test_support_looks_up_any_merchants_payment(server: Server, api: httpx.Client) -> None:
    paid = api.post(
        "/v1/payments",
        json={
            "amount": 1999,
            "currency": "CNY",
            "method": "card",
            "order_id": "o-77",
            "customer": {"phone": "+8613812345678"},
            "payment_token": "sim_decline_insufficient_funds",
        },
    ).json()
    with client(server, make_operator(server.runtime.store, "cs-wu", "support")) as cs:
        one = cs.get(f"/v1/ops/payments/{paid['id']}", headers={"Accept-Language": "en"})
        assert one.status_code == 200
        body = one.json()
        assert (body["merchant_id"], body["order_id"]) == (server.merchant_id, "o-77")
        assert body["failure"]["code"] == "insufficient_funds"
        assert "13812345678" not in one.text  # masked for support too
        listed = cs.get(
            "/v1/ops/payments", params={"merchant_id": server.merchant_id, "order_id": "o-77"}
        )
        assert [p["id"] for p in listed.json()["data"]] == [paid["id"]]
        audit = cs.get("/v1/ops/audit").json()["data"]  # who saw which customer's payment
        assert [(e["action"], e["actor"], e["target"], e["details"]) for e in audit] == [
            (
                "payment.lookup",
                "operator:cs-wu",
                f"order:{server.merchant_id}/o-77",
                {"payments": [paid["id"]], "count": 1},
            ),
            (
                "payment.lookup",
                "operator:cs-wu",
                f"payment:{paid['id']}",
                {"payments": [paid["id"]], "count": 1},
            ),
        ]


# -- operators and their keys ----------------------------------------------------------


def test_admins_create_operators_who_act_under_their_own_name(
    server: Server, admin: httpx.Client
) -> None:
    made = admin.post("/v1/ops/operators", json={"name": "ops-wang", "role": "ops"})
    assert made.status_code == 201, made.text
    secret = made.json()["key"]["secret"]
    assert secret.startswith("opk_") and made.json()["role"] == "ops"
    with client(server, secret) as wang:
        me = wang.get("/v1/ops/me").json()
        assert (me["name"], me["role"], me["key"]["hint"]) == (
            "ops-wang",
            "ops",
            f"opk_…{secret[-4:]}",
        )
        assert wang.post("/v1/ops/controls", json=PAUSE).status_code == 201
    listed = admin.get("/v1/ops/operators")
    audit = admin.get("/v1/ops/audit")
    assert secret not in listed.text and secret not in audit.text
    assert {o["name"]: o["role"] for o in listed.json()["data"]} == {
        "boss": "admin",
        "ops-wang": "ops",
    }
    assert [(e["action"], e["actor"], e["target"]) for e in audit.json()["data"]] == [
        ("control.pause", "operator:ops-wang", "bank:CMB"),
        ("operator.create", "operator:boss", "operator:ops-wang"),
    ]
    before = count_rows(server.runtime.store)
    for body, code in [
        ({"name": "ops-wang", "role": "ops"}, "operator_exists"),
        ({"name": "Ops Wang", "role": "ops"}, "parameter_invalid"),
        ({"name": "playbook:x", "role": "ops"}, "parameter_invalid"),
        ({"name": "x", "role": "root"}, "parameter_invalid"),
    ]:
        refused = admin.post("/v1/ops/operators", json=body)
        assert refused.status_code in (400, 409) and refused.json()["error"]["code"] == code
    assert count_rows(server.runtime.store) == before


def test_a_new_role_applies_at_once(server: Server, admin: httpx.Client) -> None:
    key = make_operator(server.runtime.store, "lin", "viewer")
    with client(server, key) as lin:
        assert lin.post("/v1/ops/controls", json=PAUSE).status_code == 403
        changed = admin.post(
            "/v1/ops/operators/lin/role", json={"role": "ops", "reason": "on call"}
        )
        assert changed.status_code == 200 and changed.json()["role"] == "ops"
        assert lin.post("/v1/ops/controls", json=PAUSE).status_code == 201
    entry = admin.get("/v1/ops/audit").json()["data"][1]
    assert (entry["action"], entry["details"]) == (
        "operator.role",
        {"before": "viewer", "after": "ops"},
    )


def test_rotation_keeps_the_old_key_for_the_overlap_then_it_expires(
    server: Server, admin: httpx.Client, clock: ManualClock
) -> None:
    old = make_operator(server.runtime.store, "lin", "viewer")
    rotated = admin.post("/v1/ops/operators/lin/keys", json={"overlap_seconds": 3600})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["key"]["secret"]
    (expiring,) = rotated.json()["expiring"]
    assert expiring["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat()
    with client(server, old) as before, client(server, new) as after:
        assert before.get("/v1/ops/me").status_code == 200
        assert after.get("/v1/ops/me").status_code == 200
        clock.advance(3599)
        assert before.get("/v1/ops/me").status_code == 200
        clock.advance(1)
        gone = before.get("/v1/ops/me")
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "operator_key_invalid"
        assert after.get("/v1/ops/me").status_code == 200
    (lin,) = [o for o in admin.get("/v1/ops/operators").json()["data"] if o["name"] == "lin"]
    assert [k["status"] for k in lin["keys"]] == ["expired", "active"]
    audit = admin.get("/v1/ops/audit").json()["data"]
    assert (audit[0]["action"], audit[0]["target"]) == ("operator.key.rotate", "operator:lin")
    assert new not in str(audit)


def test_a_revoked_or_expired_operator_key_stops_at_once(
    server: Server, admin: httpx.Client, clock: ManualClock
) -> None:
    made = admin.post(
        "/v1/ops/operators", json={"name": "temp", "role": "viewer", "expires_in_seconds": 60}
    ).json()
    with client(server, made["key"]["secret"]) as temp:
        assert temp.get("/v1/ops/controls").status_code == 200
        clock.advance(60)
        assert temp.get("/v1/ops/controls").status_code == 401
    lin = make_operator(server.runtime.store, "lin", "ops")
    with client(server, lin) as c:
        key_id = c.get("/v1/ops/me").json()["key"]["id"]
        revoked = admin.post(
            f"/v1/ops/operators/lin/keys/{key_id}/revoke", json={"reason": "laptop stolen"}
        )
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        assert c.get("/v1/ops/controls").status_code == 401
    again = admin.post(f"/v1/ops/operators/lin/keys/{key_id}/revoke", json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "key_already_revoked"
    entry = admin.get("/v1/ops/audit").json()["data"][0]
    assert (entry["action"], entry["actor"], entry["reason"]) == (
        "operator.key.revoke",
        "operator:boss",
        "laptop stolen",
    )


# -- merchant keys ---------------------------------------------------------------------


def pays(server: Server, key: str) -> int:
    response = httpx.get(
        f"{server.url}/v1/payments",
        params={"order_id": "o"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=WAIT_S,
    )
    return response.status_code


def test_merchant_keys_list_rotate_with_overlap_and_expire_exactly(
    server: Server, admin: httpx.Client, clock: ManualClock
) -> None:
    (only,) = admin.get(f"/v1/ops/merchants/{server.merchant_id}/keys").json()["data"]
    assert only["hint"] == f"sk_…{server.key[-4:]}" and only["status"] == "active"
    assert pays(server, server.key) == 200
    assert admin.get("/v1/ops/merchants/shop/keys").json()["data"] == [
        {**only, "last_used_at": clock.now().isoformat()}
    ]  # by name too; last used: just now
    rotated = admin.post(
        f"/v1/ops/merchants/{server.merchant_id}/keys", json={"overlap_seconds": 3}
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["key"]["secret"]
    assert new.startswith("sk_") and pays(server, new) == 200
    assert pays(server, server.key) == 200  # cached now, with its expiry
    clock.advance(3)  # within the cache's 5 s: the expiry is still exact
    assert pays(server, server.key) == 401
    assert pays(server, new) == 200
    listed = admin.get(f"/v1/ops/merchants/{server.merchant_id}/keys").json()["data"]
    assert [k["status"] for k in listed] == ["expired", "active"]
    audit = admin.get("/v1/ops/audit").json()["data"]
    assert (audit[0]["action"], audit[0]["target"]) == (
        "merchant.key.rotate",
        f"merchant:{server.merchant_id}",
    )
    assert new not in str(audit)


def test_a_revoked_merchant_key_stops_at_once_here_and_within_5s_elsewhere(
    server: Server, admin: httpx.Client, clock: ManualClock
) -> None:
    second = admin.post(
        f"/v1/ops/merchants/{server.merchant_id}/keys", json={"overlap_seconds": 86400}
    ).json()
    assert pays(server, server.key) == 200 and pays(server, second["key"]["secret"]) == 200
    old_id = second["expiring"][0]["id"]
    revoked = admin.post(
        f"/v1/ops/merchants/{server.merchant_id}/keys/{old_id}/revoke", json={"reason": "leaked"}
    )
    assert revoked.status_code == 200
    assert pays(server, server.key) == 401  # this process forgot it at once
    # another process (the CLI) revokes the second key: this one follows within 5 s
    store = server.runtime.store
    store.run_sync(
        lambda c: keys.revoke(c, keys.MERCHANT, server.merchant_id, second["key"]["id"], NOW)
    )
    clock.advance(5)
    assert pays(server, second["key"]["secret"]) == 401


def test_bad_key_requests_change_nothing(server: Server, admin: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    mid = server.merchant_id
    cases = [
        (admin.post(f"/v1/ops/merchants/{mid}/keys", json={"overlap_seconds": -1}), 400),
        (admin.post(f"/v1/ops/merchants/{mid}/keys", json={"overlap_seconds": 10**9}), 400),
        (admin.post(f"/v1/ops/merchants/{mid}/keys", json={"expires_in_seconds": 0}), 400),
        (admin.post(f"/v1/ops/merchants/{mid}/keys", json={"actor": "x"}), 400),
        (admin.post(f"/v1/ops/merchants/{mid}/keys", json={"reason": "a\x00"}), 400),
        (admin.post(f"/v1/ops/merchants/{mid}/keys/key_nope/revoke", json={}), 404),
        (admin.post("/v1/ops/merchants/nope/keys", json={}), 404),
        (admin.post("/v1/ops/operators/boss/keys/key_nope/revoke", json={}), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
    assert count_rows(server.runtime.store) == before


def test_seconds_are_integers_never_booleans_strings_or_floats(
    server: Server, admin: httpx.Client
) -> None:
    """`false` once rotated a key with no overlap and `"3600"` made a key: a mistake must
    be refused, never read as a number."""
    before = count_rows(server.runtime.store)
    mid = server.merchant_id
    for body in (
        {"overlap_seconds": False},
        {"overlap_seconds": "0"},
        {"overlap_seconds": 3600.0},
        {"expires_in_seconds": True},
    ):
        refused = admin.post(f"/v1/ops/merchants/{mid}/keys", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["param"] == next(iter(body)), body
    made = admin.post(
        "/v1/ops/operators", json={"name": "new-one", "role": "viewer", "expires_in_seconds": "60"}
    )
    assert made.status_code == 400 and made.json()["error"]["param"] == "expires_in_seconds"
    assert count_rows(server.runtime.store) == before
