"""What operators do with incidents: acknowledge the alert, review the incident once it
is resolved, and search the case library of earlier ones.

Each operator action changes the incident, puts an event on its timeline and writes an
audit entry in one transaction, so the timeline and the audit log never disagree.
Playbooks open and resolve incidents through `store.incidents` directly, inside their
own transactions.
"""

from __future__ import annotations

from collections.abc import Sequence

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.domain.incident import Incident, IncidentEventKind
from paymend.engine.audit import Audited, audited
from paymend.engine.ids import IdFactory
from paymend.store import incidents as repo
from paymend.store.database import Connection, Store

REVIEW_TEXT_MAX = 5000
MAX_FOLLOW_UPS = 20  # a review's tasks; more is a project, not a follow-up
FOLLOW_UP_MAX = 300  # one task, one line


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
        self,
        incident_id: str,
        cause: str,
        resolution: str,
        lessons: str,
        actor: str,
        follow_ups: Sequence[str] = (),
    ) -> Incident:
        """The post-incident review; refused (Conflict `incident_open`) while it runs.
        `follow_ups`: the tasks it leaves (at most MAX_FOLLOW_UPS, each one line)."""
        _require("actor", actor, 200)
        for name, text in (("cause", cause), ("resolution", resolution), ("lessons", lessons)):
            _require(name, text, REVIEW_TEXT_MAX)
        if len(follow_ups) > MAX_FOLLOW_UPS:
            raise InvalidInput(
                "parameter_invalid", f"at most {MAX_FOLLOW_UPS} follow-ups", param="follow_ups"
            )
        for task in follow_ups:
            _require("follow_ups", task, FOLLOW_UP_MAX)
        now = self.clock.now()
        tasks = list(follow_ups)

        def change(conn: Connection) -> Audited[Incident]:
            repo.review(conn, incident_id, cause, resolution, lessons, actor, now, tasks)
            details = {
                "cause": cause,
                "resolution": resolution,
                "lessons": lessons,
                "follow_ups": tasks,
            }
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
