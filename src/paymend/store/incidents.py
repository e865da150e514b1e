"""Incidents, their timelines, and the case library of reviewed incidents.

Playbooks open and resolve incidents and append to their timelines; operators
acknowledge and review them. Every change recomputes `search_text`, the lower-cased
words a search matches against, so the case library is a plain LIKE per word that
behaves the same on SQLite and PostgreSQL (no full-text engine to keep in step).
Functions take the caller's Connection: the caller decides what else lands in the same
transaction (an audit entry, an action).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from typing_extensions import TypedDict

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.store.tables import incident_events, incidents

SEVERITIES = ("critical", "major", "minor")
STATUSES = ("open", "resolved")
EVENT_KINDS = ("signal", "action", "recovery", "note", "acknowledged", "review", "resolved")
_MAX_TITLE = 200
_SUSPECT = (
    "scope",
    "symptom",
    "calls",
    "failures",
    "expected",
    "explanatory_power",
    "surprise",
    "p_value",
    "evidence",
)


class SuspectLike(Protocol):
    """The shape of `health.diagnosis.Suspect`, named here because store/ must not import
    health/: a playbook can hand its diagnosis over as it is."""

    @property
    def scope(self) -> Mapping[str, str]: ...
    @property
    def symptom(self) -> str | None: ...
    @property
    def calls(self) -> int: ...
    @property
    def explanatory_power(self) -> float: ...
    @property
    def surprise(self) -> float: ...
    @property
    def failures(self) -> int: ...
    @property
    def expected(self) -> float: ...
    @property
    def p_value(self) -> float: ...
    @property
    def evidence(self) -> float: ...


Diagnosis = Iterable[SuspectLike | Mapping[str, Any]]


class DiagnosisEntry(TypedDict):
    """A scope that explains an incident's failures (docs/health.md): the calls and
    failures seen in it, what was expected, its explanatory power and surprise, and the
    evidence (a p-value and its log-likelihood ratio). A figure that is not finite is null."""

    scope: dict[str, str]
    symptom: str | None  # the failure code it was found by, if any
    calls: int | None
    failures: int | None
    expected: float | None
    explanatory_power: float | None
    surprise: float | None
    p_value: float | None
    evidence: float | None


class Review(TypedDict):
    """The post-incident review: what caused it, how it was fixed, what to keep."""

    cause: str
    resolution: str
    lessons: str
    reviewer: str  # operator:<name>
    reviewed_at: str


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    id: int
    incident_id: str
    at: datetime
    kind: str
    message: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    playbook: str
    title: str
    severity: str  # critical | major | minor
    status: str  # open | resolved
    scope: dict[str, str]
    scope_key: str  # the health key of the scope (health.keys), e.g. sim_a|bank=CMB
    opened_at: datetime
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    affected_payments: int = 0
    diagnosis: list[DiagnosisEntry] = field(default_factory=list)
    review: Review | None = None
    search_text: str = ""
    events: list[IncidentEvent] | None = None  # the timeline, oldest first; None: not loaded

    @classmethod
    def new(
        cls,
        id: str,
        playbook: str,
        title: str,
        severity: str,
        scope: Mapping[str, str],
        scope_key: str,
        opened_at: datetime,
        *,
        affected_payments: int = 0,
        diagnosis: Diagnosis = (),
    ) -> Incident:
        """An open incident, ready for `open_incident`."""
        return cls(
            id,
            playbook,
            title,
            severity,
            "open",
            dict(scope),
            scope_key,
            opened_at,
            affected_payments=affected_payments,
            diagnosis=_diagnosis(diagnosis),
        )


def open_incident(conn: Connection, incident: Incident) -> Incident:
    """Store a new incident. Conflict `incident_already_open` when the playbook already
    has one open on that scope (the database guards it, so two workers cannot both open
    one); the caller's transaction stays usable, e.g. to `add_event` to `open_for(...)`."""
    _check(incident)
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
    if kind not in EVENT_KINDS:
        raise InvalidInput(
            "incident_event_invalid",
            f"event kind '{kind}' is not one of {', '.join(EVENT_KINDS)}",
            param="kind",
        )
    exists = conn.execute(sa.select(incidents.c.id).where(incidents.c.id == incident_id)).first()
    if exists is None:
        raise _not_found(incident_id)
    payload = dict(details or {})
    result = conn.execute(
        incident_events.insert(),
        {
            "incident_id": incident_id,
            "at": at,
            "kind": kind,
            "message": message,
            "details": payload,
        },
    )
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - both databases report the new id
        raise RuntimeError("the database did not report the new event's id")
    event_id = int(key[0])
    return IncidentEvent(event_id, incident_id, at, kind, message, payload)


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
        diagnosis=current.diagnosis if diagnosis is None else _diagnosis(diagnosis),
        severity=current.severity if severity is None else severity,
    )
    _check(changed)
    return _save(conn, changed)


def resolve(conn: Connection, incident_id: str, at: datetime, message: str) -> Incident:
    """Close an incident and put `message` on its timeline as the `resolved` event."""
    current = _load_for_update(conn, incident_id)
    if current.status != "open":
        raise Conflict("incident_resolved", f"incident '{incident_id}' is already resolved")
    resolved = _save(conn, replace(current, status="resolved", resolved_at=at))
    add_event(conn, incident_id, at, "resolved", message)
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
) -> Incident:
    """Write (or revise) the post-incident review that makes the incident a case to learn
    from. Conflict `incident_open` while it still runs: the cause is not known yet."""
    current = _load_for_update(conn, incident_id)
    if current.status == "open":
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
        IncidentEvent(r.id, r.incident_id, r.at, r.kind, r.message, dict(r.details)) for r in rows
    ]
    return replace(_incident(row), events=events)


def open_for(conn: Connection, playbook: str, scope_key: str) -> Incident | None:
    """The playbook's open incident on that scope, if any (at most one: see the index)."""
    row = conn.execute(
        sa.select(incidents).where(
            incidents.c.playbook == playbook,
            incidents.c.scope_key == scope_key,
            incidents.c.status == "open",
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
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            "parameter_invalid", f"status must be one of {', '.join(STATUSES)}", param="status"
        )
    if limit < 1:
        raise InvalidInput("parameter_invalid", "limit must be at least 1", param="limit")
    query = sa.select(incidents)
    for word in (q or "").lower().split():
        query = query.where(incidents.c.search_text.contains(word, autoescape=True))
    if status is not None:
        query = query.where(incidents.c.status == status)
    query = query.order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit)
    return [_incident(r) for r in conn.execute(query)]


def search_text_of(incident: Incident) -> str:
    """The words a search matches: title, playbook, severity, scope and diagnosis as
    `key=value`, and the review; lower-cased, each word once, in order of appearance."""
    parts = [incident.title, incident.playbook, incident.severity]
    parts += [f"{k}={v}" for k, v in incident.scope.items()]
    for d in incident.diagnosis:
        parts += [f"{k}={v}" for k, v in d["scope"].items()]
        parts += [f"code={d['symptom']}"] if d.get("symptom") else []
    if incident.review:
        parts += [str(incident.review.get(k, "")) for k in ("cause", "resolution", "lessons")]
        parts.append(str(incident.review.get("reviewer", "")))
    words = " ".join(parts).lower().split()
    return " ".join(dict.fromkeys(words))


def _check(incident: Incident) -> None:
    if incident.severity not in SEVERITIES:
        raise InvalidInput(
            "incident_severity_invalid",
            f"severity must be one of {', '.join(SEVERITIES)}, not '{incident.severity}'",
            param="severity",
        )
    if incident.status not in STATUSES:
        raise InvalidInput(
            "incident_status_invalid", f"status must be one of {', '.join(STATUSES)}"
        )
    if not incident.title or len(incident.title) > _MAX_TITLE:
        raise InvalidInput(
            "incident_title_invalid", f"a title has 1 to {_MAX_TITLE} characters", param="title"
        )
    if incident.affected_payments < 0:
        raise InvalidInput(
            "parameter_invalid",
            "affected_payments must not be negative",
            param="affected_payments",
        )


def _diagnosis(entries: Diagnosis) -> list[DiagnosisEntry]:
    """Suspects or mappings as plain JSON; non-finite numbers become null (JSONB refuses
    NaN and infinity). A mapping of the older form {dimension, value} becomes a scope."""
    out: list[DiagnosisEntry] = []
    for e in entries:
        raw = dict(e) if isinstance(e, Mapping) else {k: getattr(e, k, None) for k in _SUSPECT}
        scope = raw.get("scope")
        if scope is None:
            scope = {str(raw["dimension"]): str(raw["value"])}
        symptom = raw.get("symptom")
        out.append(
            {
                "scope": {str(k): str(v) for k, v in dict(scope).items()},
                "symptom": None if symptom is None else str(symptom),
                "calls": _count(raw.get("calls")),
                "failures": _count(raw.get("failures")),
                "expected": _figure(raw.get("expected")),
                "explanatory_power": _figure(raw.get("explanatory_power")),
                "surprise": _figure(raw.get("surprise")),
                # a p-value keeps its magnitude: 1e-40 is not 0
                "p_value": _figure(raw.get("p_value"), significant=True),
                "evidence": _figure(raw.get("evidence")),
            }
        )
    return out


def _count(n: Any) -> int | None:
    return int(n) if n is not None else None


def _figure(x: Any, *, significant: bool = False) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.3g}") if significant else round(float(x), 4)


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
        "severity": i.severity,
        "status": i.status,
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
        r.severity,
        r.status,
        dict(r.scope),
        r.scope_key,
        r.opened_at,
        r.resolved_at,
        r.acknowledged_at,
        r.acknowledged_by,
        r.affected_payments,
        _diagnosis(r.diagnosis),  # rows of the older {dimension, value} form read as scopes
        cast(Review, dict(r.review)) if r.review is not None else None,
        r.search_text,
    )


def _not_found(incident_id: str) -> NotFound:
    return NotFound("incident_not_found", f"no incident '{incident_id}'", param="id")
