"""Incidents: what a playbook opens when a channel breaks, with its timeline, the payments
it touched, its diagnosis (where the failures concentrate) and, once resolved, the
review that makes it a case to learn from."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, Protocol

from typing_extensions import TypedDict

from paymend.domain.errors import InvalidInput


class IncidentSeverity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class IncidentEventKind(StrEnum):
    """What a timeline entry records."""

    SIGNAL = "signal"  # the playbook's signal, with its values
    ACTION = "action"  # what the playbook did
    RECOVERY = "recovery"  # the signal cleared
    NOTE = "note"
    ACKNOWLEDGED = "acknowledged"  # an operator took the alert
    REVIEW = "review"  # the post-incident review was written
    RESOLVED = "resolved"


def severity_of(value: str) -> IncidentSeverity:
    """The severity named `value`; InvalidInput for any other word."""
    try:
        return IncidentSeverity(value)
    except ValueError:
        raise InvalidInput(
            "incident_severity_invalid",
            f"severity must be one of {', '.join(IncidentSeverity)}, not '{value}'",
            param="severity",
        ) from None


def status_of(
    value: str, code: str = "incident_status_invalid", param: str | None = None
) -> IncidentStatus:
    """The status named `value`; InvalidInput `code` for any other word."""
    try:
        return IncidentStatus(value)
    except ValueError:
        raise InvalidInput(
            code, f"status must be one of {', '.join(IncidentStatus)}", param=param
        ) from None


def event_kind_of(value: str) -> IncidentEventKind:
    """The timeline entry kind named `value`; InvalidInput for any other word."""
    try:
        return IncidentEventKind(value)
    except ValueError:
        raise InvalidInput(
            "incident_event_invalid",
            f"event kind '{value}' is not one of {', '.join(IncidentEventKind)}",
            param="kind",
        ) from None


MAX_TITLE = 200
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
    """The post-incident review: what caused it, how it was fixed, what to keep, and the
    follow-ups (one task each) that make it not happen again."""

    cause: str
    resolution: str
    lessons: str
    reviewer: str  # operator:<name>
    reviewed_at: str
    follow_ups: NotRequired[list[str]]  # reviews written before follow-ups have none


class SuspectLike(Protocol):
    """The shape of `health.diagnosis.Suspect`, named here because domain/ (and store/)
    must not import health/: a playbook can hand its diagnosis over as it is."""

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


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    id: int
    incident_id: str
    at: datetime
    kind: IncidentEventKind
    message: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": self.kind.value,
            "message": self.message,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    playbook: str
    title: str
    severity: IncidentSeverity
    status: IncidentStatus
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

    def __post_init__(self) -> None:
        # a severity or status given by its word (a playbook, a row) is the enum member
        object.__setattr__(self, "severity", severity_of(self.severity))
        object.__setattr__(self, "status", status_of(self.status))

    @classmethod
    def new(
        cls,
        id: str,
        playbook: str,
        title: str,
        severity: IncidentSeverity | str,
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
            severity_of(severity),
            IncidentStatus.OPEN,
            dict(scope),
            scope_key,
            opened_at,
            affected_payments=affected_payments,
            diagnosis=diagnosis_entries(diagnosis),
        )

    def check(self) -> None:
        """Refuse an incident that cannot be stored: its title and counts."""
        if not self.title or len(self.title) > MAX_TITLE:
            raise InvalidInput(
                "incident_title_invalid", f"a title has 1 to {MAX_TITLE} characters", param="title"
            )
        if self.affected_payments < 0:
            raise InvalidInput(
                "parameter_invalid",
                "affected_payments must not be negative",
                param="affected_payments",
            )

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "playbook": self.playbook,
            "title": self.title,
            "severity": self.severity.value,
            "status": self.status.value,
            "scope": self.scope,
            "scope_key": self.scope_key,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": _iso(self.resolved_at),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "affected_payments": self.affected_payments,
            "diagnosis": self.diagnosis,
            "review": self.review,
        }
        if self.events is not None:
            body["events"] = [e.as_dict() for e in self.events]
        return body


def diagnosis_entries(entries: Diagnosis) -> list[DiagnosisEntry]:
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


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
