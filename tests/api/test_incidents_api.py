"""Operators search the case library, read an incident's timeline, acknowledge the alert
and review the incident once it is over; bad requests change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from paymend.domain.incident import Incident
from paymend.store import incidents as repo
from paymend.store.database import Store
from tests.api.conftest import Server, running_on
from tests.helpers import NOW, WAIT_S, ManualClock, count_rows, make_operator

REVIEW = {
    "cause": "The acquirer's TLS certificate expired",
    "resolution": "The acquirer renewed it; traffic went back to sim_a",
    "lessons": "Watch certificate expiry dates of every acquirer",
    "follow_ups": ["Alert 30 days before a certificate expires (lin, 15 Dec)"],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW + timedelta(hours=6))


@pytest.fixture
def server(db_url: str, clock: ManualClock) -> Iterator[Server]:
    """conftest's server, on a clock the test controls."""
    with running_on(db_url, clock) as started:
        yield started


@pytest.fixture
def ops(server: Server) -> Iterator[httpx.Client]:
    key = make_operator(server.runtime.store, "ops-lin", "ops")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT_S
    ) as c:
        yield c


def open_incident(store: Store, iid: str, title: str, bank: str, hours: int) -> None:
    """What a playbook does when a bank breaks on sim_a: open, then signal."""
    at = NOW + timedelta(hours=hours)
    incident = Incident.new(
        iid,
        "channel_degraded",
        title,
        "major",
        {"channel": "sim_a", "bank": bank},
        f"sim_a|bank={bank}",
        at,
        affected_payments=7,
        diagnosis=[{"scope": {"bank": bank}, "explanatory_power": 0.9}],
    )

    def write(conn: sa.Connection) -> None:
        repo.open_incident(conn, incident)
        repo.add_event(conn, iid, at, "signal", f"error rate 40% for {bank}")
        repo.add_event(conn, iid, at + timedelta(minutes=1), "action", f"paused {bank}")

    store.run_sync(write)


@pytest.fixture
def library(server: Server) -> Store:
    store = server.runtime.store
    open_incident(store, "inc_a", "Timeouts for CMB cards", "CMB", 0)
    store.run_sync(lambda c: repo.resolve(c, "inc_a", NOW + timedelta(minutes=40), "recovered"))
    open_incident(store, "inc_b", "Declines at ICBC", "ICBC", 1)
    open_incident(store, "inc_c", "Declines at ABC", "ABC", 2)
    return store


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return [i["id"] for i in body["data"]]


def test_the_case_library_lists_and_searches(library: Store, ops: httpx.Client) -> None:
    assert ids(ops.get("/v1/ops/incidents")) == ["inc_c", "inc_b", "inc_a"]
    assert ids(ops.get("/v1/ops/incidents", params={"q": "declines"})) == ["inc_c", "inc_b"]
    assert ids(ops.get("/v1/ops/incidents", params={"q": "DECLINES icbc"})) == ["inc_b"]
    assert ids(ops.get("/v1/ops/incidents", params={"q": "bank=cmb"})) == ["inc_a"]
    assert ids(ops.get("/v1/ops/incidents", params={"q": "100%"})) == []
    assert ids(ops.get("/v1/ops/incidents", params={"status": "resolved"})) == ["inc_a"]
    assert ids(ops.get("/v1/ops/incidents", params={"status": "open", "limit": 1})) == ["inc_c"]
    listed = ops.get("/v1/ops/incidents").json()["data"][0]
    assert "events" not in listed and "search_text" not in listed
    assert listed["scope"] == {"channel": "sim_a", "bank": "ABC"}


def test_one_incident_comes_with_its_timeline(library: Store, ops: httpx.Client) -> None:
    got = ops.get("/v1/ops/incidents/inc_a")
    assert got.status_code == 200
    body = got.json()
    assert (body["status"], body["severity"], body["affected_payments"]) == ("resolved", "major", 7)
    assert body["opened_at"] == NOW.isoformat()
    assert [(e["kind"], e["message"]) for e in body["events"]] == [
        ("signal", "error rate 40% for CMB"),
        ("action", "paused CMB"),
        ("resolved", "recovered"),
    ]
    assert body["diagnosis"][0]["scope"] == {"bank": "CMB"}


def test_acknowledging_the_alert_is_recorded_and_audited(
    library: Store, ops: httpx.Client, clock: ManualClock
) -> None:
    acked = ops.post("/v1/ops/incidents/inc_b/acknowledge", json={"reason": "calling ICBC"})
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["acknowledged_by"] == "operator:ops-lin"
    assert body["acknowledged_at"] == clock.now().isoformat()
    assert body["events"][-1]["kind"] == "acknowledged"
    assert body["events"][-1]["message"] == "acknowledged by operator:ops-lin: calling ICBC"
    audit = ops.get("/v1/ops/audit").json()["data"]
    assert [(e["action"], e["actor"], e["target"], e["reason"]) for e in audit] == [
        ("incident.acknowledge", "operator:ops-lin", "incident:inc_b", "calling ICBC")
    ]
    twice = ops.post("/v1/ops/incidents/inc_b/acknowledge", json={"reason": "me too"})
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "incident_already_acknowledged"


def test_a_review_waits_for_the_incident_to_be_resolved(
    server: Server, library: Store, ops: httpx.Client
) -> None:
    before = count_rows(library)
    early = ops.post("/v1/ops/incidents/inc_b/review", json=REVIEW)
    assert early.status_code == 409 and early.json()["error"]["code"] == "incident_open"
    assert count_rows(library) == before
    library.run_sync(lambda c: repo.resolve(c, "inc_b", NOW + timedelta(hours=2), "recovered"))
    reviewed = ops.post("/v1/ops/incidents/inc_b/review", json=REVIEW)
    assert reviewed.status_code == 200, reviewed.text
    review = reviewed.json()["review"]
    assert {k: review[k] for k in ("cause", "resolution", "lessons", "follow_ups")} == {
        k: REVIEW[k] for k in ("cause", "resolution", "lessons", "follow_ups")
    }
    assert review["reviewer"] == "operator:ops-lin"
    assert reviewed.json()["events"][-1]["kind"] == "review"
    found = ops.get("/v1/ops/incidents", params={"q": "certificate expiry"})
    assert ids(found) == ["inc_b"]
    assert ids(ops.get("/v1/ops/incidents", params={"q": "15 dec"})) == ["inc_b"]  # a follow-up
    audit = ops.get("/v1/ops/audit").json()["data"]
    assert [(e["action"], e["target"]) for e in audit] == [("incident.review", "incident:inc_b")]


def test_the_incidents_api_needs_an_operator_key(
    server: Server, library: Store, api: httpx.Client
) -> None:
    before = count_rows(library)
    anonymous = httpx.get(f"{server.url}/v1/ops/incidents", timeout=WAIT_S)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "operator_key_missing"
    merchant = api.post(
        "/v1/ops/incidents/inc_b/acknowledge", json={"reason": "x"}
    )  # a merchant's key is not an operator's
    assert merchant.status_code == 401
    assert merchant.json()["error"]["code"] == "operator_key_invalid"
    assert count_rows(library) == before


def test_unknown_incidents_are_404(library: Store, ops: httpx.Client) -> None:
    for response in (
        ops.get("/v1/ops/incidents/inc_nope"),
        ops.post("/v1/ops/incidents/inc_nope/acknowledge", json={"reason": "r"}),
        ops.post("/v1/ops/incidents/inc_nope/review", json=REVIEW),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "incident_not_found"


def test_bad_requests_change_nothing(library: Store, ops: httpx.Client) -> None:
    before = count_rows(library)
    ack = "/v1/ops/incidents/inc_b/acknowledge"
    cases: list[tuple[httpx.Response, str, str | None]] = [
        (ops.post(ack, json={}), "parameter_missing", "reason"),
        (ops.post(ack, json={"reason": "  "}), "parameter_invalid", "reason"),
        (ops.post(ack, json={"reason": "x", "by": "y"}), "parameter_unknown", "by"),
        (ops.post(ack, json={"reason": "x", "actor": "a"}), "parameter_unknown", "actor"),
        (ops.post(ack, json={"reason": "x\x00"}), "parameter_invalid", "reason"),
        (
            ops.post("/v1/ops/incidents/inc_a/review", json={**REVIEW, "reviewer": "a"}),
            "parameter_unknown",
            "reviewer",
        ),
        (
            ops.post("/v1/ops/incidents/inc_a/review", json={**REVIEW, "cause": "a\x1b[1m"}),
            "parameter_invalid",
            "cause",
        ),
        (
            ops.post(ack, content=b"{nope", headers={"Content-Type": "application/json"}),
            "invalid_json",
            None,
        ),
        (
            ops.post("/v1/ops/incidents/inc_a/review", json={**REVIEW, "lessons": ""}),
            "parameter_invalid",
            "lessons",
        ),
        (
            ops.post("/v1/ops/incidents/inc_a/review", json={**REVIEW, "cause": "x" * 5001}),
            "parameter_invalid",
            "cause",
        ),
        (
            ops.post("/v1/ops/incidents/inc_a/review", json={**REVIEW, "follow_ups": ["a\nb"]}),
            "parameter_invalid",
            "follow_ups.0",
        ),
        (
            ops.post("/v1/ops/incidents/inc_a/review", json={**REVIEW, "follow_ups": ["t"] * 21}),
            "parameter_invalid",
            "follow_ups",
        ),
        (ops.get("/v1/ops/incidents", params={"status": "closed"}), "parameter_invalid", "status"),
        (ops.get("/v1/ops/incidents", params={"limit": 0}), "parameter_invalid", "limit"),
    ]
    for response, code, param in cases:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == (code, param), response.text
    assert count_rows(library) == before
