"""Silences: ops say "no pages about this until then", with a reason, in the audit log.

A silence matches incidents by playbook and by the channel, bank or region of their
scope; every field it sets must match. While one matches, the incident's page sends
nothing and its escalation clock waits (engine/ops_alerts.py); the incident itself,
its actions and the metric go on as ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.engine.audit import Audited, audited
from paymend.engine.ids import IdFactory
from paymend.store import ops_alerts as repo
from paymend.store.database import Connection, Store

LONGEST = timedelta(days=30)  # a silence longer than this is a route to remove


class SilenceService:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory) -> None:
        self.store, self.clock, self.ids = store, clock, ids

    async def active(self) -> list[repo.Silence]:
        now = self.clock.now()
        return await self.store.run(lambda conn: repo.active_silences(conn, now))

    async def add(
        self, matchers: Mapping[str, str | None], until: datetime, reason: str, actor: str
    ) -> repo.Silence:
        """Silence incidents matching `matchers` until `until`. Refused (400) without a
        matcher, with an end in the past or too far, or without a reason."""
        now = self.clock.now()
        chosen = {k: v for k, v in matchers.items() if v}
        unknown = sorted(set(chosen) - set(repo.MATCHERS))
        if unknown:
            raise InvalidInput("silence_invalid", f"cannot silence by '{unknown[0]}'")
        if not chosen:
            raise InvalidInput(
                "silence_invalid",
                f"name at least one of {', '.join(repo.MATCHERS)}: a silence of everything "
                "is a route to remove",
            )
        if until.tzinfo is None:
            raise InvalidInput("silence_invalid", "'until' needs a time zone", param="until")
        if until <= now or until - now > LONGEST:
            raise InvalidInput(
                "silence_invalid", "'until' must be in the next 30 days", param="until"
            )
        if not reason.strip() or len(reason) > 500:
            raise InvalidInput("parameter_invalid", "'reason' needs 1 to 500 characters")
        silence_id = self.ids.new("sil")

        def change(conn: Connection) -> Audited[repo.Silence]:
            made = repo.add_silence(conn, silence_id, chosen, reason, actor, until, now)
            details = {**chosen, "until": until.isoformat()}
            return Audited(made, "ops_alerts.silence", f"silence:{silence_id}", details)

        return await audited(self.store, now, actor, reason, change)

    async def end(self, silence_id: str, reason: str, actor: str) -> repo.Silence:
        """End a silence early: pages resume on the next sweep."""
        if not reason.strip() or len(reason) > 500:
            raise InvalidInput("parameter_invalid", "'reason' needs 1 to 500 characters")
        now = self.clock.now()

        def change(conn: Connection) -> Audited[repo.Silence]:
            ended = repo.end_silence(conn, silence_id, actor, now)
            return Audited(ended, "ops_alerts.silence.end", f"silence:{silence_id}", {})

        return await audited(self.store, now, actor, reason, change)
