"""What an ops page says: the incident in a few lines, its diagnosis in one, the link;
or, for a failure that opened no incident, what happened and its ids.

One message per incident and step (opened, reminder, escalated, acknowledged,
resolved); whatever the incident's timeline gained since the previous message (more
actions, a refined diagnosis) is folded into the next one, never a message of its own.
Plain text: it reads the same in a chat bot, an email and a JSON tool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from paymend.domain.incident import DiagnosisEntry, Incident, IncidentEvent, IncidentEventKind

MAX_FOLDED = 5  # timeline entries a message repeats; older ones are counted


class PageKind(StrEnum):
    OPENED = "opened"
    REMINDER = "reminder"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class PageText:
    title: str
    body: str


def diagnosis_line(incident: Incident) -> str:
    """The diagnosis in one line: where the failures concentrate, or the title."""
    if not incident.diagnosis:
        return f"no diagnosis yet; scope {_scope(incident.scope) or 'all channels'}"
    top: DiagnosisEntry = incident.diagnosis[0]
    where = _scope(top["scope"]) or "everywhere"
    symptom = f" ({top['symptom']})" if top.get("symptom") else ""
    counts = ""
    if top.get("failures") is not None and top.get("calls"):
        counts = f": {top['failures']} of {top['calls']} calls failed"
    return f"failures concentrate in {where}{symptom}{counts}"


def render(
    kind: PageKind,
    incident: Incident,
    url: str,
    now: datetime,
    *,
    news: Sequence[IncidentEvent] = (),
    level: int = 0,
    reminder: int = 0,
    brief: bool = False,
) -> PageText:
    """The message of `kind` about `incident`; `news`: its timeline since the last one.
    `brief`: a resolution nobody was paged about before (opened and resolved in one)."""
    sev = incident.severity.value.upper()
    head = {
        PageKind.OPENED: "incident opened",
        PageKind.REMINDER: f"reminder {reminder}, not acknowledged",
        PageKind.ESCALATED: f"escalated to level {level + 1}, not acknowledged",
        PageKind.ACKNOWLEDGED: f"acknowledged by {incident.acknowledged_by}",
        PageKind.RESOLVED: "opened and resolved" if brief else "resolved",
    }[kind]
    title = f"[{sev}] {head}: {incident.title}"
    lines = [
        f"Diagnosis: {diagnosis_line(incident)}",
        f"Payments affected: {incident.affected_payments}",
        f"Opened {incident.opened_at:%Y-%m-%d %H:%M:%S} UTC, {_ago(incident.opened_at, now)}",
    ]
    if kind is PageKind.RESOLVED and incident.resolved_at is not None:
        lasted = _span((incident.resolved_at - incident.opened_at).total_seconds())
        lines.append(f"Resolved {incident.resolved_at:%H:%M:%S} UTC after {lasted}")
    shown = [e for e in news if e.kind is not IncidentEventKind.NOTE][-MAX_FOLDED:]
    hidden = len([e for e in news if e.kind is not IncidentEventKind.NOTE]) - len(shown)
    if shown:
        lines.append("Since the last message:")
        if hidden:
            lines.append(f"  ({hidden} earlier entries in the incident)")
        lines += [f"  {e.at:%H:%M:%S} {e.kind.value}: {e.message}" for e in shown]
    lines.append(f"Incident: {url}")
    if kind in (PageKind.OPENED, PageKind.REMINDER, PageKind.ESCALATED):
        lines.append(f"Acknowledge: POST {url}/acknowledge (ops role), or the console")
    return PageText(title, "\n".join(lines))


def event_text(
    severity: str,
    title: str,
    facts: Mapping[str, Any],
    scope: Mapping[str, str],
    at: datetime,
    now: datetime,
) -> PageText:
    """The one message about a failure that opened no incident (engine/ops_events.py):
    what happened, the ids to look it up by, and that nothing waits for an
    acknowledgement."""
    lines = [f"{k}: {v}" for k, v in facts.items() if v is not None and v != ""]
    if scope:
        lines.append(f"Scope: {_scope(dict(scope))}")
    lines.append(f"Raised {at:%Y-%m-%d %H:%M:%S} UTC, {_ago(at, now)}")
    lines.append("No incident was opened: nothing to acknowledge (log line ops_alert)")
    return PageText(f"[{severity.upper()}] {title}", "\n".join(lines))


def _scope(scope: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items())


def _ago(at: datetime, now: datetime) -> str:
    return f"{_span((now - at).total_seconds())} ago"


def _span(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
