"""What operators do with incidents: acknowledge the alert, review the incident once it
is resolved, and search the case library of earlier ones.

Each operator action changes the incident, puts an event on its timeline and writes an
audit entry in one transaction, so the timeline and the audit log never disagree.
Playbooks open and resolve incidents through `store.incidents` directly, inside their
own transactions.
"""

from __future__ import annotations

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.domain.incident import Incident, IncidentEventKind
from paymend.engine.audit import Audited, audited
from paymend.engine.ids import IdFactory
from paymend.store import incidents as repo
from paymend.store.database import Connection, Store

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

        def change(conn: Connection) -> Audited[Incident]:
            repo.acknowledge(conn, incident_id, actor, now)
            details = {"actor": actor, "reason": reason}
            message = f"acknowledged by {actor}: {reason}"
            repo.add_event(conn, incident_id, now, IncidentEventKind.ACKNOWLEDGED, message, details)
            whole = repo.get(conn, incident_id)
            return Audited(whole, "incident.acknowledge", f"incident:{incident_id}", details)

        return await audited(self.store, now, actor, reason, change)

    async def review(
        self, incident_id: str, cause: str, resolution: str, lessons: str, actor: str
    ) -> Incident:
        """The post-incident review; refused (Conflict `incident_open`) while it runs."""
        _require("actor", actor, 200)
        for name, text in (("cause", cause), ("resolution", resolution), ("lessons", lessons)):
            _require(name, text, REVIEW_TEXT_MAX)
        now = self.clock.now()

        def change(conn: Connection) -> Audited[Incident]:
            repo.review(conn, incident_id, cause, resolution, lessons, actor, now)
            details = {"cause": cause, "resolution": resolution, "lessons": lessons}
            repo.add_event(
                conn, incident_id, now, IncidentEventKind.REVIEW, f"reviewed by {actor}", details
            )
            whole = repo.get(conn, incident_id)
            return Audited(whole, "incident.review", f"incident:{incident_id}", details)

        return await audited(self.store, now, actor, None, change)


def _require(name: str, text: str, longest: int) -> None:
    """Refuse before writing: the audit log's columns are bounded on PostgreSQL."""
    if not text.strip() or len(text) > longest:
        raise InvalidInput(
            "parameter_invalid", f"'{name}' needs 1 to {longest} characters", param=name
        )
