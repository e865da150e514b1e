"""Risk control through the real HTTP API: a blocked customer reads a neutral message,
the decision is readable with the payment, ops keep the lists (audit-logged), a fraud
report blocks the card, a challenge goes through 3-D Secure and /confirm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from tests.api.conftest import CONFIG, Server, running
from tests.helpers import count_rows, make_operator

RULES = """\
version: "api-1"
rules:
  - name: far_away
    action: challenge
    when: country_mismatch
  - name: bad_device
    action: block
    when: device_id == "dev-bad"
  - name: big_stranger
    action: review
    when: amount_major > 5000 and customer_successes == 0
"""


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    settings = Settings(database_url=db_url, risk_rules=str(rules))
    runtime = build_runtime(settings, PaymendConfig.model_validate(CONFIG))
    with running(runtime) as server:
        yield server


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def ops(server: Server) -> Iterator[httpx.Client]:
    with server.client(make_operator(server.runtime.store)) as client:
        yield client


def pay(api: httpx.Client, order: str, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "amount": 1999,
        "currency": "CNY",
        "method": "card",
        "order_id": order,
        "payment_token": "sim_approve",
        **extra,
    }
    r = api.post("/v1/payments", json=body, headers={"Idempotency-Key": f"k-{order}"})
    assert r.status_code == 201, r.text
    answer: dict[str, object] = r.json()
    return answer


def test_a_blocked_customer_reads_a_neutral_message_never_the_rule(api: httpx.Client) -> None:
    p = pay(api, "o1", metadata={"device_id": "dev-bad"}, customer={"locale": "en"})
    assert p["status"] == "failed" and p["attempts"] == []
    failure = p["failure"]
    assert isinstance(failure, dict) and failure["code"] == "risk_declined"  # the shop knows
    msg = p["customer_message"]
    assert isinstance(msg, dict)
    text = f"{msg['title']} {msg['message']}".lower()
    assert "could not be used" in text and "another" in str(msg).lower()
    assert "bad_device" not in str(msg) and "risk" not in text and "fraud" not in text
    again = api.post(
        "/v1/payments",
        json={
            "amount": 1999,
            "currency": "CNY",
            "method": "card",
            "order_id": "o1",
            "payment_token": "sim_approve",
            "metadata": {"device_id": "dev-bad"},
            "customer": {"locale": "en"},
        },
        headers={"Idempotency-Key": "k-o1"},
    )
    assert again.status_code == 201 and again.json()["id"] == p["id"]  # the key's answer
    # the decision is part of the payment, for the shop (its customer never sees it)
    fired = [{"rule": "bad_device", "action": "block", "shadow": False}]
    decided = {"action": "block", "rules": fired, "score": 50, "rules_version": "api-1"}
    assert p["risk"] == again.json()["risk"] == decided
    assert api.get(f"/v1/payments/{p['id']}").json()["risk"] == decided
    risk = api.get(f"/v1/payments/{p['id']}/risk").json()
    assert risk["verdict"] == "block" and risk["rules_version"] == "api-1"
    assert risk["rules"] == [{"rule": "bad_device", "action": "block", "shadow": False}]
    assert risk["features"]["device_id"] == "dev-bad"


def test_review_and_challenge_through_the_api(api: httpx.Client) -> None:
    held = pay(api, "o2", amount=900_000)
    assert held["status"] == "held"
    assert held["next_action"]["type"] == "wait_for_review"  # type: ignore[index]
    far = pay(api, "o3", payment_token="sim_3ds", metadata={"country": "CN", "ip_country": "FR"})
    assert far["status"] == "requires_action" and far["attempts"] == []
    assert far["next_action"]["type"] == "authenticate"  # type: ignore[index]
    r = api.post(f"/v1/payments/{far['id']}/confirm", headers={"Idempotency-Key": "c-o3"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and len(r.json()["attempts"]) == 1
    assert held["risk"]["action"] == "review"  # type: ignore[index]
    assert held["risk"]["rules"][0]["rule"] == "big_stranger"  # type: ignore[index]
    assert r.json()["risk"]["action"] == "challenge"
    plain = pay(api, "o4")
    assert plain["risk"] == {"action": "allow", "rules": [], "score": 50, "rules_version": "api-1"}
    listed = api.get("/v1/payments", params={"limit": 10}).json()["data"]
    assert {x["id"]: x["risk"]["action"] for x in listed} == {
        held["id"]: "review",
        far["id"]: "challenge",
        plain["id"]: "allow",
    }


def test_ops_keep_the_lists_and_every_change_is_audited(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    before = count_rows(server.runtime.store)
    bad = ops.post(
        "/v1/ops/risk/lists",
        json={"kind": "phone", "value": "x", "action": "block", "reason": "r"},
    )
    assert bad.status_code == 400 and count_rows(server.runtime.store) == before
    refused = api.post(
        "/v1/ops/risk/lists",
        json={"kind": "device", "value": "dev-bad", "action": "allow", "reason": "r"},
    )
    assert refused.status_code == 401  # a merchant key is not an operator's
    added = ops.post(
        "/v1/ops/risk/lists",
        json={"kind": "device", "value": "dev-bad", "action": "allow", "reason": "our QA rig"},
    )
    assert added.status_code == 201, added.text
    entry = added.json()
    assert pay(api, "o4", metadata={"device_id": "dev-bad"})["status"] == "succeeded"
    listed = ops.get("/v1/ops/risk/lists", params={"kind": "device"}).json()["data"]
    assert [e["value"] for e in listed] == ["dev-bad"]
    # replaced in place: the same entry (its id, its audit target), the new action
    replaced = ops.post(
        "/v1/ops/risk/lists",
        json={"kind": "device", "value": "dev-bad", "action": "block", "reason": "seen again"},
    )
    assert replaced.status_code == 201 and replaced.json()["id"] == entry["id"]
    listed = ops.get("/v1/ops/risk/lists", params={"kind": "device"}).json()["data"]
    assert [(e["id"], e["action"], e["reason"]) for e in listed] == [
        (entry["id"], "block", "seen again")
    ]
    back = ops.post(
        "/v1/ops/risk/lists",
        json={"kind": "device", "value": "dev-bad", "action": "allow", "reason": "our QA rig"},
    )
    assert back.json()["id"] == entry["id"]
    gone = ops.post(f"/v1/ops/risk/lists/{entry['id']}/remove", json={"reason": "QA done"})
    assert gone.status_code == 200
    assert pay(api, "o5", metadata={"device_id": "dev-bad"})["status"] == "failed"
    again = ops.post(f"/v1/ops/risk/lists/{entry['id']}/remove", json={"reason": "twice"})
    assert again.status_code == 404 and again.json()["error"]["code"] == "risk_list_entry_not_found"
    shadow = ops.get("/v1/ops/risk/shadow", params={"since": "2020-01-01T00:00:00Z"})
    assert shadow.status_code == 200 and shadow.json() == {"object": "list", "data": []}
    assert ops.get("/v1/ops/risk/shadow", params={"since": "yesterday"}).status_code == 400
    audit = ops.get("/v1/ops/audit").json()["data"]
    actions = [a["action"] for a in audit]
    assert "risk.list_add" in actions and "risk.list_remove" in actions
    targets = {a["target"] for a in audit if a["action"].startswith("risk.list")}
    assert targets == {f"risk_list:{entry['id']}"}


def test_a_fraud_report_blocks_the_card_for_every_later_payment(
    api: httpx.Client, ops: httpx.Client
) -> None:
    signals = {"card_fingerprint": "fp-123", "device_id": "dev-9"}
    paid = pay(api, "o6", metadata=signals, customer={"id": "c9", "email": "x@example.com"})
    assert paid["status"] == "succeeded"
    url = f"/v1/payments/{paid['id']}/fraud-report"
    r = api.post(url, json={"kind": "fraud", "reason": "cardholder disputed"})
    assert r.status_code == 201 and sorted(r.json()["blocked"]) == ["card", "device", "email"]
    twice = api.post(url, json={"kind": "fraud", "reason": "again"})
    assert twice.status_code == 200 and twice.json()["new"] is False
    wrong = api.post(url, json={"kind": "friendly", "reason": "x"})
    assert wrong.status_code == 400
    later = pay(api, "o7", metadata={"card_fingerprint": "fp-123"})
    assert later["status"] == "failed"
    emails = ops.get("/v1/ops/risk/lists", params={"kind": "email"}).json()["data"]
    assert [e["value"] for e in emails] == ["x***@example.com"]
    assert ops.get(f"/v1/ops/payments/{later['id']}/risk").json()["rules"][0]["rule"] == (
        "list:block:card"
    )
    missing = api.get("/v1/payments/pay_nope/risk")
    assert missing.status_code == 404


def test_the_longest_signals_are_kept_whole_or_cut_never_refused(api: httpx.Client) -> None:
    long = {
        "device_id": "d" * 500,
        "ip": "1" * 500,
        "card_fingerprint": "f" * 500,
        "customer_since": "not a date",
        "country": "x" * 500,
    }
    p = pay(api, "o8", metadata=long, customer={"id": "c" * 128, "email": "a@b.co"})
    assert p["status"] == "succeeded"
    risk = api.get(f"/v1/payments/{p['id']}/risk").json()
    assert risk["verdict"] == "allow" and risk["features"]["customer_id"] == "c" * 128


def test_the_longest_email_a_list_takes_is_kept_and_shown_cut(ops: httpx.Client) -> None:
    email = "0@" + "a" * 122 + ".com"  # 128 characters: the most the API takes
    added = ops.post(
        "/v1/ops/risk/lists",
        json={"kind": "email", "value": email, "action": "block", "reason": "r"},
    )
    assert added.status_code == 201, added.text
    shown = added.json()["value"]
    assert len(shown) <= 128 and shown.startswith("0***@aaa") and shown.endswith("…")
    again = ops.post(
        "/v1/ops/risk/lists",
        json={"kind": "email", "value": email.upper(), "action": "block", "reason": "r"},
    )
    assert again.status_code == 201, again.text  # the same address: its entry, replaced
    listed = ops.get("/v1/ops/risk/lists", params={"kind": "email"}).json()["data"]
    assert [e["value"] for e in listed] == [shown]
