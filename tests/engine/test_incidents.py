"""Operators' steps on an incident land together with their timeline event and their
audit entry, or not at all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.incident import Incident
from paymend.engine.ids import IdFactory
from paymend.engine.incidents import IncidentService
from paymend.store import controls, incidents
from paymend.store.database import Store
from tests.helpers import NOW, ManualClock, count_rows


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def svc(store: Store, clock: ManualClock) -> IncidentService:
    incident = Incident.new(
        "inc_1", "channel_down", "sim_a down", "critical", {"channel": "sim_a"}, "sim_a", NOW
    )
    store.run_sync(lambda c: incidents.open_incident(c, incident))
    return IncidentService(store, clock, IdFactory(seed=1))


def test_acknowledging_writes_the_change_its_event_and_its_audit_entry(
    store: Store, clock: ManualClock, svc: IncidentService
) -> None:
    clock.advance(90)
    acked = asyncio.run(svc.acknowledge("inc_1", "ops-lin", "looking at the acquirer"))
    at = NOW + timedelta(seconds=90)
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("ops-lin", at)
    assert acked.events is not None
    assert [(e.kind, e.at, e.message) for e in acked.events] == [
        ("acknowledged", at, "acknowledged by ops-lin: looking at the acquirer")
    ]
    audit = store.run_sync(controls.audit_entries)
    assert audit == [
        {
            "at": at.isoformat(),
            "actor": "ops-lin",
            "action": "incident.acknowledge",
            "target": "incident:inc_1",
            "reason": "looking at the acquirer",
            "details": {"actor": "ops-lin", "reason": "looking at the acquirer"},
        }
    ]
    assert asyncio.run(svc.get("inc_1")) == acked


def test_a_refused_step_writes_nothing(store: Store, svc: IncidentService) -> None:
    before = count_rows(store)
    with pytest.raises(Conflict) as still_open:
        asyncio.run(svc.review("inc_1", "cert expired", "renewed", "alert earlier", "ops-lin"))
    assert still_open.value.code == "incident_open"
    with pytest.raises(NotFound):
        asyncio.run(svc.acknowledge("inc_nope", "ops-lin", "x"))
    with pytest.raises(InvalidInput):
        asyncio.run(svc.acknowledge("inc_1", "ops-lin", "x" * 501))
    assert count_rows(store) == before
    asyncio.run(svc.acknowledge("inc_1", "ops-lin", "on it"))
    after_ack = count_rows(store)
    with pytest.raises(Conflict):
        asyncio.run(svc.acknowledge("inc_1", "ops-wang", "me too"))
    assert count_rows(store) == after_ack


def test_a_review_after_resolution_is_audited_and_searchable(
    store: Store, clock: ManualClock, svc: IncidentService
) -> None:
    store.run_sync(lambda c: incidents.resolve(c, "inc_1", NOW + timedelta(minutes=20), "ok"))
    clock.advance(3600)
    reviewed = asyncio.run(
        svc.review("inc_1", "Certificate expired", "Renewed it", "Alert earlier", "ops-lin")
    )
    assert reviewed.review is not None and reviewed.review["reviewer"] == "ops-lin"
    assert reviewed.events is not None
    assert [e.kind for e in reviewed.events] == ["resolved", "review"]
    with store.engine.connect() as conn:
        action, target = conn.execute(sa.text("SELECT action, target FROM audit_log")).one()
    assert (action, target) == ("incident.review", "incident:inc_1")
    found = asyncio.run(svc.search("certificate", "resolved", 10))
    assert [i.id for i in found] == ["inc_1"]
