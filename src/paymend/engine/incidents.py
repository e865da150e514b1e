"""What operators do with incidents: acknowledge the alert, review the incident once it
is resolved, and search the case library of earlier ones.

Each operator action changes the incident, puts an event on its timeline and writes an
audit entry in one transaction, so the timeline and the audit log never disagree.
Playbooks open and resolve incidents through `store.incidents` directly, inside their
own transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.engine.ids import IdFactory
from paymend.observability import get_logger
from paymend.store import controls as audit_repo
from paymend.store import incidents as repo
from paymend.store.database import Store
from paymend.store.incidents import Incident

log = get_logger("paymend.audit")
REVIEW_TEXT_MAX = 5000


class IncidentService:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids  # for the automatic side: `Incident.new(ids.new("inc"), …)`

    async def get(self, incident_id: str) -> Incident:
        return await self.store.run(lambda conn: repo.get(conn, incident_id))

    async def search(self, q: str | None, status: str | None, limit: int) -> list[Incident]:
        return await self.store.run(lambda conn: repo.search(conn, q, status, limit))

    async def acknowledge(self, incident_id: str, actor: str, reason: str) -> Incident:
        """Someone has taken the alert: it stops being nobody's."""
        _require("actor", actor, 200)
        _require("reason", reason, 500)
        now = self.clock.now()

        def change(conn: Connection) -> tuple[Incident, dict[str, Any]]:
            incident = repo.acknowledge(conn, incident_id, actor, now)
            details = {"actor": actor, "reason": reason}
            message = f"acknowledged by {actor}: {reason}"
            repo.add_event(conn, incident_id, now, "acknowledged", message, details)
            return incident, details

        return await self._audited("incident.acknowledge", change, actor, reason, now)

    async def review(
        self, incident_id: str, cause: str, resolution: str, lessons: str, actor: str
    ) -> Incident:
        """The post-incident review; refused (Conflict `incident_open`) while it runs."""
        _require("actor", actor, 200)
        for name, text in (("cause", cause), ("resolution", resolution), ("lessons", lessons)):
            _require(name, text, REVIEW_TEXT_MAX)
        now = self.clock.now()

        def change(conn: Connection) -> tuple[Incident, dict[str, Any]]:
            incident = repo.review(conn, incident_id, cause, resolution, lessons, actor, now)
            details = {"cause": cause, "resolution": resolution, "lessons": lessons}
            repo.add_event(conn, incident_id, now, "review", f"reviewed by {actor}", details)
            return incident, details

        return await self._audited("incident.review", change, actor, None, now)

    async def _audited(
        self,
        action: str,
        change: Callable[[Connection], tuple[Incident, dict[str, Any]]],
        actor: str,
        reason: str | None,
        now: datetime,
    ) -> Incident:
        """Make a change and its audit entry in one transaction, then log it. Answers the
        whole incident, timeline included, as that transaction left it."""

        def write(conn: Connection) -> Incident:
            incident, details = change(conn)
            target = f"incident:{incident.id}"
            audit_repo.audit(conn, now, actor, action, target, reason, details)
            return repo.get(conn, incident.id)

        incident = await self.store.run(write)
        log.info(
            "audit",
            action=action,
            who=actor,
            target=f"incident:{incident.id}",
            scope=incident.scope_key,
            why=reason,
        )
        return incident


def _require(name: str, text: str, longest: int) -> None:
    """Refuse before writing: the audit log's columns are bounded on PostgreSQL."""
    if not text.strip() or len(text) > longest:
        raise InvalidInput(
            "parameter_invalid", f"'{name}' needs 1 to {longest} characters", param=name
        )
