"""Incidents keep their timeline in order, refuse a review while they run, and the case
library finds them by every word asked for, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.incident import Incident
from paymend.health.diagnosis import Suspect
from paymend.store import incidents as repo
from paymend.store.database import Store
from tests.helpers import NOW, count_rows


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def an_incident(
    iid: str = "inc_1",
    *,
    title: str = "sim_a failing for CMB cards",
    playbook: str = "channel_degraded",
    scope: dict[str, str] | None = None,
    scope_key: str = "sim_a|bank=CMB",
    minutes: int = 0,
) -> Incident:
    scope = scope if scope is not None else {"channel": "sim_a", "bank": "CMB"}
    return Incident.new(
        iid,
        playbook,
        title,
        "major",
        scope,
        scope_key,
        NOW + timedelta(minutes=minutes),
        affected_payments=12,
        diagnosis=[Suspect(dict(scope), 60, 0.91, 0.3, 40, 3.5, 2e-40, 180.25, "provider_timeout")],
    )


def open_(store: Store, incident: Incident) -> Incident:
    return store.run_sync(lambda c: repo.open_incident(c, incident))


def search(store: Store, q: str | None, status: str | None = None, limit: int = 50) -> list[str]:
    return [i.id for i in store.run_sync(lambda c: repo.search(c, q, status, limit))]


def resolve(store: Store, iid: str, minutes: int = 30) -> Incident:
    at = NOW + timedelta(minutes=minutes)
    return store.run_sync(lambda c: repo.resolve(c, iid, at, "error rate back to normal"))


def add_event(store: Store, at: datetime, kind: str, message: str, details: dict[str, int]) -> None:
    store.run_sync(lambda c: repo.add_event(c, "inc_1", at, kind, message, details))


def test_an_incident_round_trips_and_its_timeline_keeps_order(store: Store) -> None:
    open_(store, an_incident())
    for minute, kind, message in [
        (0, "signal", "error rate 38% on sim_a|bank=CMB"),
        (1, "action", "paused bank CMB on sim_a"),
        (9, "recovery", "error rate 2%"),
    ]:
        add_event(store, NOW + timedelta(minutes=minute), kind, message, {"m": minute})
    got = store.run_sync(lambda c: repo.get(c, "inc_1"))
    assert (got.status, got.severity, got.scope, got.affected_payments) == (
        "open",
        "major",
        {"channel": "sim_a", "bank": "CMB"},
        12,
    )
    assert got.opened_at == NOW and got.opened_at.tzinfo is not None
    assert got.diagnosis == [
        {
            "scope": {"channel": "sim_a", "bank": "CMB"},
            "symptom": "provider_timeout",
            "calls": 60,
            "failures": 40,
            "expected": 3.5,
            "explanatory_power": 0.91,
            "surprise": 0.3,
            "p_value": 2e-40,  # its magnitude kept, not rounded to 0
            "evidence": 180.25,
        }
    ]
    assert search(store, "code=provider_timeout bank=cmb") == ["inc_1"]
    assert got.review is None and got.acknowledged_at is None
    assert got.events is not None
    assert [(e.kind, e.details["m"]) for e in got.events] == [
        ("signal", 0),
        ("action", 1),
        ("recovery", 9),
    ]
    assert got.events[1].message == "paused bank CMB on sim_a"
    assert (
        store.run_sync(lambda c: repo.open_for(c, "channel_degraded", "sim_a|bank=CMB"))
        == (store.run_sync(lambda c: repo.search(c, None, None, 1))[0])
    )


def test_update_changes_what_the_playbook_learned(store: Store) -> None:
    open_(store, an_incident())
    changed = store.run_sync(
        lambda c: repo.update(
            c,
            "inc_1",
            affected_payments=40,
            severity="critical",
            diagnosis=[{"scope": {"region": "Shanghai"}, "failures": 7}],
        )
    )
    got = store.run_sync(lambda c: repo.get(c, "inc_1"))
    assert (got.affected_payments, got.severity) == (40, "critical")
    assert got.diagnosis[0]["scope"] == {"region": "Shanghai"}
    assert got.diagnosis[0]["surprise"] is None
    assert changed.search_text == got.search_text
    assert search(store, "region=SHANGHAI") == ["inc_1"]  # the new diagnosis is searchable
    older = [{"dimension": "bank", "value": "CMB", "failures": 3}]  # before scopes
    store.run_sync(lambda c: repo.update(c, "inc_1", diagnosis=older))
    assert store.run_sync(lambda c: repo.get(c, "inc_1")).diagnosis[0]["scope"] == {"bank": "CMB"}
    with pytest.raises(InvalidInput):
        store.run_sync(lambda c: repo.update(c, "inc_1", severity="apocalyptic"))
    with pytest.raises(NotFound):
        store.run_sync(lambda c: repo.update(c, "inc_nope", affected_payments=1))


def test_resolving_closes_it_once_and_frees_the_scope(store: Store) -> None:
    open_(store, an_incident())
    resolved = resolve(store, "inc_1")
    assert resolved.status == "resolved" and resolved.resolved_at == NOW + timedelta(minutes=30)
    got = store.run_sync(lambda c: repo.get(c, "inc_1"))
    assert got.events is not None
    assert [(e.kind, e.message) for e in got.events] == [("resolved", "error rate back to normal")]
    with pytest.raises(Conflict) as again:
        resolve(store, "inc_1")
    assert again.value.code == "incident_resolved"
    assert store.run_sync(lambda c: repo.open_for(c, "channel_degraded", "sim_a|bank=CMB")) is None
    open_(store, an_incident("inc_2", minutes=60))  # the same scope breaks again later
    reopened = store.run_sync(lambda c: repo.open_for(c, "channel_degraded", "sim_a|bank=CMB"))
    assert reopened is not None and reopened.id == "inc_2"


def test_one_open_incident_per_playbook_and_scope(store: Store) -> None:
    open_(store, an_incident())

    def second_then_event(conn: sa.Connection) -> str:
        # a second worker saw the same signal: refused, and its transaction goes on
        with pytest.raises(Conflict) as refused:
            repo.open_incident(conn, an_incident("inc_2"))
        assert refused.value.code == "incident_already_open"
        current = repo.open_for(conn, "channel_degraded", "sim_a|bank=CMB")
        assert current is not None
        repo.add_event(conn, current.id, NOW, "signal", "still failing")
        return current.id

    assert store.run_sync(second_then_event) == "inc_1"
    assert search(store, None) == ["inc_1"]
    open_(store, an_incident("inc_3", playbook="bank_outage"))  # another playbook may
    assert search(store, None) == ["inc_3", "inc_1"]


def test_acknowledging_records_who_once(store: Store) -> None:
    open_(store, an_incident())
    at = NOW + timedelta(minutes=2)
    acked = store.run_sync(lambda c: repo.acknowledge(c, "inc_1", "ops-lin", at))
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("ops-lin", at)
    with pytest.raises(Conflict) as twice:
        store.run_sync(lambda c: repo.acknowledge(c, "inc_1", "ops-wang", at))
    assert twice.value.code == "incident_already_acknowledged"
    assert store.run_sync(lambda c: repo.get(c, "inc_1")).acknowledged_by == "ops-lin"


def test_a_review_is_refused_while_the_incident_is_open(store: Store) -> None:
    open_(store, an_incident())
    before = count_rows(store)
    with pytest.raises(Conflict) as refused:
        store.run_sync(lambda c: repo.review(c, "inc_1", "cause", "fix", "lesson", "ops-lin", NOW))
    assert refused.value.code == "incident_open" and refused.value.status == 409
    assert count_rows(store) == before
    assert store.run_sync(lambda c: repo.get(c, "inc_1")).review is None
    resolve(store, "inc_1")
    at = NOW + timedelta(hours=2)
    reviewed = store.run_sync(
        lambda c: repo.review(
            c,
            "inc_1",
            "Acquirer certificate expired",
            "Renewed the certificate",
            "Alert 30 days before expiry",
            "ops-lin",
            at,
        )
    )
    assert reviewed.review == {
        "cause": "Acquirer certificate expired",
        "resolution": "Renewed the certificate",
        "lessons": "Alert 30 days before expiry",
        "reviewer": "ops-lin",
        "reviewed_at": at.isoformat(),
        "follow_ups": [],
    }
    assert store.run_sync(lambda c: repo.get(c, "inc_1")).review == reviewed.review
    assert search(store, "CERTIFICATE expiry") == ["inc_1"]


def test_unknown_incidents_are_not_found(store: Store) -> None:
    for call in (
        lambda c: repo.get(c, "inc_nope"),
        lambda c: repo.add_event(c, "inc_nope", NOW, "note", "x"),
        lambda c: repo.acknowledge(c, "inc_nope", "ops", NOW),
        lambda c: repo.resolve(c, "inc_nope", NOW, "x"),
    ):
        with pytest.raises(NotFound) as missing:
            store.run_sync(call)
        assert missing.value.code == "incident_not_found"
    open_(store, an_incident())
    with pytest.raises(InvalidInput):
        store.run_sync(lambda c: repo.add_event(c, "inc_1", NOW, "gossip", "x"))
    with pytest.raises(InvalidInput):
        open_(store, an_incident("inc_2", title=""))


@pytest.fixture
def library(store: Store) -> Store:
    """Four incidents, an hour apart, the newest last."""
    open_(store, an_incident("inc_a", title="Timeouts on sim_a for CMB", minutes=0))
    resolve(store, "inc_a", minutes=30)
    open_(
        store,
        an_incident(
            "inc_b",
            title="Declines of 100% at ICBC",
            scope={"channel": "sim_b", "bank": "ICBC"},
            scope_key="sim_b|bank=ICBC",
            minutes=60,
        ),
    )
    resolve(store, "inc_b", minutes=90)
    open_(
        store,
        an_incident(
            "inc_c",
            title="Region Shanghai slow",
            playbook="region_degraded",
            scope={"channel": "simxa", "region": "Shanghai"},
            scope_key="simxa|region=Shanghai",
            minutes=120,
        ),
    )
    open_(
        store,
        an_incident(
            "inc_d",
            title="Declines of 100 at ABC",
            scope={"channel": "sim_b", "bank": "ABC"},
            scope_key="sim_b|bank=ABC",
            minutes=180,
        ),
    )
    return store


def test_search_needs_every_word_in_any_case(library: Store) -> None:
    assert search(library, None) == ["inc_d", "inc_c", "inc_b", "inc_a"]
    assert search(library, "") == ["inc_d", "inc_c", "inc_b", "inc_a"]
    assert search(library, "declines") == ["inc_d", "inc_b"]
    assert search(library, "DECLINES icbc") == ["inc_b"]
    assert search(library, "declines shanghai") == []
    assert search(library, "  shanghai   REGION_degraded ") == ["inc_c"]
    assert search(library, "bank=cmb") == ["inc_a"]  # scope words
    assert search(library, "timeouts channel_degraded") == ["inc_a"]


def test_percent_and_underscore_are_literal(library: Store) -> None:
    assert search(library, "100%") == ["inc_b"]
    assert search(library, "%") == ["inc_b"]
    assert search(library, "sim_a") == ["inc_a"]  # not inc_c's "simxa"
    assert search(library, "_") == ["inc_d", "inc_c", "inc_b", "inc_a"]  # playbook names
    assert search(library, "sim\\a") == []


def test_search_filters_by_status_and_limits(library: Store) -> None:
    assert search(library, None, "open") == ["inc_d", "inc_c"]
    assert search(library, "declines", "resolved") == ["inc_b"]
    assert search(library, None, limit=2) == ["inc_d", "inc_c"]
    found = library.run_sync(lambda c: repo.search(c, None, None, 1))
    assert found[0].events is None
    with pytest.raises(InvalidInput):
        search(library, None, "closed")
