"""Incidents, their timelines, and the case library of reviewed incidents.

Playbooks open and resolve incidents and append to their timelines; operators
acknowledge and review them. Every change recomputes `search_text`, the lower-cased
words a search matches against, so the case library is a plain LIKE per word that
behaves the same on SQLite and PostgreSQL (no full-text engine to keep in step).
Functions take the caller's Connection: the caller decides what else lands in the same
transaction (an audit entry, an action).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.incident import (
    Diagnosis,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentSeverity,
    IncidentStatus,
    Review,
    diagnosis_entries,
    event_kind_of,
    severity_of,
    status_of,
)
from paymend.store.tables import incident_events, incidents


def open_incident(conn: Connection, incident: Incident) -> Incident:
    """Store a new incident. Conflict `incident_already_open` when the playbook already
    has one open on that scope (the database guards it, so two workers cannot both open
    one); the caller's transaction stays usable, e.g. to `add_event` to `open_for(...)`."""
    incident.check()
    stored = replace(incident, search_text=search_text_of(incident), events=None)
    try:
        with conn.begin_nested():
            conn.execute(incidents.insert(), _row(stored))
    except sa.exc.IntegrityError as error:
        if open_for(conn, incident.playbook, incident.scope_key) is None:
            raise  # not the one-open-incident guard: a real bug, e.g. a reused id
        raise Conflict(
            "incident_already_open",
            f"playbook '{incident.playbook}' already has an open incident on"
            f" '{incident.scope_key}'",
        ) from error
    return stored


def add_event(
    conn: Connection,
    incident_id: str,
    at: datetime,
    kind: str,
    message: str,
    details: Mapping[str, Any] | None = None,
) -> IncidentEvent:
    """Append to an incident's timeline (NotFound for an unknown incident)."""
    entry = event_kind_of(kind)
    exists = conn.execute(sa.select(incidents.c.id).where(incidents.c.id == incident_id)).first()
    if exists is None:
        raise _not_found(incident_id)
    payload = dict(details or {})
    result = conn.execute(
        incident_events.insert(),
        {
            "incident_id": incident_id,
            "at": at,
            "kind": entry.value,
            "message": message,
            "details": payload,
        },
    )
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - both databases report the new id
        raise RuntimeError("the database did not report the new event's id")
    event_id = int(key[0])
    return IncidentEvent(event_id, incident_id, at, entry, message, payload)


def update(
    conn: Connection,
    incident_id: str,
    *,
    affected_payments: int | None = None,
    diagnosis: Diagnosis | None = None,
    severity: str | None = None,
) -> Incident:
    """Change what a playbook learns while an incident runs (or late, after it)."""
    current = _load_for_update(conn, incident_id)
    changed = replace(
        current,
        affected_payments=(
            current.affected_payments if affected_payments is None else affected_payments
        ),
        diagnosis=current.diagnosis if diagnosis is None else diagnosis_entries(diagnosis),
        severity=current.severity if severity is None else severity_of(severity),
    )
    changed.check()
    return _save(conn, changed)


def resolve(conn: Connection, incident_id: str, at: datetime, message: str) -> Incident:
    """Close an incident and put `message` on its timeline as the `resolved` event."""
    current = _load_for_update(conn, incident_id)
    if current.status is not IncidentStatus.OPEN:
        raise Conflict("incident_resolved", f"incident '{incident_id}' is already resolved")
    resolved = _save(conn, replace(current, status=IncidentStatus.RESOLVED, resolved_at=at))
    add_event(conn, incident_id, at, IncidentEventKind.RESOLVED, message)
    return resolved


def acknowledge(conn: Connection, incident_id: str, actor: str, at: datetime) -> Incident:
    """Record who took the alert. Only the columns: the caller adds the timeline event
    with its reason. Conflict when someone already acknowledged it."""
    current = _load_for_update(conn, incident_id)
    if current.acknowledged_at is not None:
        raise Conflict(
            "incident_already_acknowledged",
            f"incident '{incident_id}' was acknowledged by {current.acknowledged_by}",
        )
    return _save(conn, replace(current, acknowledged_at=at, acknowledged_by=actor))


def review(
    conn: Connection,
    incident_id: str,
    cause: str,
    resolution: str,
    lessons: str,
    actor: str,
    at: datetime,
    follow_ups: Sequence[str] = (),
) -> Incident:
    """Write (or revise) the post-incident review that makes the incident a case to learn
    from. Conflict `incident_open` while it still runs: the cause is not known yet."""
    current = _load_for_update(conn, incident_id)
    if current.status is IncidentStatus.OPEN:
        raise Conflict(
            "incident_open",
            f"incident '{incident_id}' is still open; review it once it is resolved",
        )
    written: Review = {
        "cause": cause,
        "resolution": resolution,
        "lessons": lessons,
        "reviewer": actor,
        "reviewed_at": at.isoformat(),
        "follow_ups": list(follow_ups),
    }
    return _save(conn, replace(current, review=written))


def get(conn: Connection, incident_id: str) -> Incident:
    """The whole incident, with its timeline."""
    row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise _not_found(incident_id)
    rows = conn.execute(
        sa.select(incident_events)
        .where(incident_events.c.incident_id == incident_id)
        .order_by(incident_events.c.id)
    )
    events = [
        IncidentEvent(
            r.id, r.incident_id, r.at, IncidentEventKind(r.kind), r.message, dict(r.details)
        )
        for r in rows
    ]
    return replace(_incident(row), events=events)


def open_for(conn: Connection, playbook: str, scope_key: str) -> Incident | None:
    """The playbook's open incident on that scope, if any (at most one: see the index)."""
    row = conn.execute(
        sa.select(incidents).where(
            incidents.c.playbook == playbook,
            incidents.c.scope_key == scope_key,
            incidents.c.status == IncidentStatus.OPEN.value,
        )
    ).first()
    return None if row is None else _incident(row)


def open_during(
    conn: Connection, since: datetime, until: datetime
) -> list[tuple[datetime, datetime | None]]:
    """When incidents were open in [since, until): (opened, resolved or None), any scope.
    Diagnosis keeps these periods out of its baseline."""
    rows = conn.execute(
        sa.select(incidents.c.opened_at, incidents.c.resolved_at).where(
            incidents.c.opened_at < until,
            sa.or_(incidents.c.resolved_at.is_(None), incidents.c.resolved_at > since),
        )
    )
    return [(r.opened_at, r.resolved_at) for r in rows]


def search(conn: Connection, q: str | None, status: str | None, limit: int) -> list[Incident]:
    """The case library, newest first: incidents whose search text contains every word of
    `q` (case-insensitive, `%` and `_` literal), optionally of one status."""
    wanted = None if status is None else status_of(status, "parameter_invalid", "status")
    if limit < 1:
        raise InvalidInput("parameter_invalid", "limit must be at least 1", param="limit")
    query = sa.select(incidents)
    for word in (q or "").lower().split():
        query = query.where(incidents.c.search_text.contains(word, autoescape=True))
    if wanted is not None:
        query = query.where(incidents.c.status == wanted.value)
    query = query.order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit)
    return [_incident(r) for r in conn.execute(query)]


def search_text_of(incident: Incident) -> str:
    """The words a search matches: title, playbook, severity, scope and diagnosis as
    `key=value`, and the review; lower-cased, each word once, in order of appearance."""
    parts = [incident.title, incident.playbook, incident.severity.value]
    parts += [f"{k}={v}" for k, v in incident.scope.items()]
    for d in incident.diagnosis:
        parts += [f"{k}={v}" for k, v in d["scope"].items()]
        parts += [f"code={d['symptom']}"] if d.get("symptom") else []
    if incident.review:
        parts += [str(incident.review.get(k, "")) for k in ("cause", "resolution", "lessons")]
        parts += incident.review.get("follow_ups", [])
        parts.append(str(incident.review.get("reviewer", "")))
    words = " ".join(parts).lower().split()
    return " ".join(dict.fromkeys(words))


def _load_for_update(conn: Connection, incident_id: str) -> Incident:
    row = conn.execute(
        sa.select(incidents).where(incidents.c.id == incident_id).with_for_update()
    ).first()
    if row is None:
        raise _not_found(incident_id)
    return _incident(row)


def _save(conn: Connection, incident: Incident) -> Incident:
    saved = replace(incident, search_text=search_text_of(incident))
    values = _row(saved)
    del values["id"]
    conn.execute(incidents.update().where(incidents.c.id == incident.id).values(**values))
    return saved


def _row(i: Incident) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": i.id,
        "playbook": i.playbook,
        "title": i.title,
        "severity": i.severity.value,
        "status": i.status.value,
        "scope": i.scope,
        "scope_key": i.scope_key,
        "opened_at": i.opened_at,
        "resolved_at": i.resolved_at,
        "acknowledged_at": i.acknowledged_at,
        "acknowledged_by": i.acknowledged_by,
        "affected_payments": i.affected_payments,
        "diagnosis": i.diagnosis,
        "search_text": i.search_text,
    }
    if i.review is not None:  # else SQL NULL, not the JSON value null
        row["review"] = i.review
    return row


def _incident(r: sa.Row[Any]) -> Incident:
    return Incident(
        r.id,
        r.playbook,
        r.title,
        IncidentSeverity(r.severity),
        IncidentStatus(r.status),
        dict(r.scope),
        r.scope_key,
        r.opened_at,
        r.resolved_at,
        r.acknowledged_at,
        r.acknowledged_by,
        r.affected_payments,
        diagnosis_entries(r.diagnosis),  # rows of the older {dimension, value} form read as scopes
        cast(Review, dict(r.review)) if r.review is not None else None,
        r.search_text,
    )


def _not_found(incident_id: str) -> NotFound:
    return NotFound("incident_not_found", f"no incident '{incident_id}'", param="id")
