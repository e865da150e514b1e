"""Operators silence ops pages through the ops API: set, list, end early; each change is
audit-logged with the operator; bad requests change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from paymend.store.tables import audit_log
from tests.api.conftest import Server, running_on
from tests.helpers import NOW, WAIT_S, ManualClock, count_rows, make_operator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW + timedelta(hours=6))


@pytest.fixture
def server(db_url: str, clock: ManualClock) -> Iterator[Server]:
    with running_on(db_url, clock) as started:
        yield started


def client(server: Server, name: str, role: str) -> httpx.Client:
    key = make_operator(server.runtime.store, name, role)
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT_S
    )


def test_a_silence_is_set_listed_ended_and_audit_logged(server: Server, clock: ManualClock) -> None:
    until = (clock.now() + timedelta(hours=2)).isoformat()
    with client(server, "ops-lin", "ops") as ops, client(server, "view-wu", "viewer") as viewer:
        body = {"channel": "sim_a", "bank": "CMB", "until": until, "reason": "bank maintenance"}
        made = ops.post("/v1/ops/silences", json=body)
        assert made.status_code == 201, made.text
        silence = made.json()
        assert silence["id"].startswith("sil_") and silence["created_by"] == "operator:ops-lin"
        assert (silence["channel"], silence["bank"], silence["playbook"]) == ("sim_a", "CMB", None)
        assert viewer.get("/v1/ops/silences").json()["data"] == [silence]
        assert viewer.post("/v1/ops/silences", json=body).status_code == 403

        ended = ops.post(f"/v1/ops/silences/{silence['id']}/end", json={"reason": "done early"})
        assert ended.status_code == 200 and ended.json()["ended_by"] == "operator:ops-lin"
        assert viewer.get("/v1/ops/silences").json()["data"] == []
        again = ops.post(f"/v1/ops/silences/{silence['id']}/end", json={"reason": "again"})
        assert (again.status_code, again.json()["error"]["code"]) == (409, "silence_ended")
        unknown = ops.post("/v1/ops/silences/sil_nope/end", json={"reason": "x"})
        assert unknown.status_code == 404
    with server.runtime.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.reason)
            .where(audit_log.c.action.like("ops_alerts.%"))
            .order_by(audit_log.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("operator:ops-lin", "ops_alerts.silence", "bank maintenance"),
        ("operator:ops-lin", "ops_alerts.silence.end", "done early"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"until": "+2h", "reason": "no matcher"},
        {"channel": "sim_a", "until": "2020-01-01T00:00:00Z", "reason": "past"},
        {"channel": "sim_a", "until": "2099-01-01T00:00:00", "reason": "no zone"},
        {"channel": "sim a", "until": "2099-01-01T00:00:00Z", "reason": "bad name"},
        {"channel": "sim_a", "until": "2099-01-01T00:00:00Z", "reason": "too far"},
        {"channel": "sim_a", "until": "2099-01-01T00:00:00Z"},
    ],
)
def test_a_bad_silence_is_refused_and_changes_nothing(
    server: Server, clock: ManualClock, body: dict[str, str]
) -> None:
    if body.get("until") == "+2h":
        body = {**body, "until": (clock.now() + timedelta(hours=2)).isoformat()}
    with client(server, "ops-lin", "ops") as ops:
        before = count_rows(server.runtime.store)
        refused = ops.post("/v1/ops/silences", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] in (
            "silence_invalid",
            "parameter_invalid",
            "parameter_missing",
        )
        assert count_rows(server.runtime.store) == before
