"""Paging ops about incidents: one page per incident, reminders while nobody acknowledges
it, escalation to the next level, a last word when it is acknowledged or resolved, and
silences that hold pages back. Failures that open no incident are paged once each, on
the same routes and under the same silences (engine/ops_events.py).

`tick` runs on every worker sweep and reads the incidents as they are: an open incident
without a page gets one (the incident id is the page's key, so two workers cannot both
start it), and each live page takes at most one step per sweep. A step plans one
message per route as an `ops_alerts` row with a unique dedupe key and a `send_ops_alert`
job, in the transaction that moves the page on: a crash before the commit leaves both
undone, after it both done, and a second planner finds the key taken. Whatever the
incident's timeline gained between two messages is folded into the next one.

`deliver` is the job: it sends one message to one route (apprise), logs the try with
the route's answer, retries on the routes file's schedule, and gives up loudly.
Delivery is at least once; JSON endpoints get the dedupe key as `Paymend-Alert-Key`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from paymend.domain.clock import Clock
from paymend.domain.incident import Incident, IncidentEventKind, IncidentStatus
from paymend.engine.ids import IdFactory
from paymend.engine.ops_events import plan_events
from paymend.notify.apprise_channel import AppriseChannel
from paymend.notify.channel import Message
from paymend.notify.ops_messages import PageKind, PageText, render
from paymend.notify.ops_routes import Routes, masked_url, with_header
from paymend.observability import get_logger
from paymend.store import incidents as incident_repo
from paymend.store import jobs
from paymend.store import ops_alerts as repo
from paymend.store.database import Connection, Store

log = get_logger("paymend.ops_alerts")

PAGES_SENT = Counter("paymend_ops_pages_sent_total", "Ops pages delivered", ["route", "kind"])
PAGES_FAILED = Counter("paymend_ops_pages_failed_total", "Ops page tries that failed", ["route"])
ALERT_KEY_HEADER = "Paymend-Alert-Key"
OPEN_INCIDENTS_READ = 500
# how far back an incident opened and resolved between two sweeps is still paged: a
# worker down longer than this does not page old news when it comes back
BRIEF_LOOKBACK = timedelta(hours=1)


class OpsAlerts:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory, routes: Routes) -> None:
        self.store, self.clock, self.ids, self.routes = store, clock, ids, routes

    # -- planning, on every sweep -------------------------------------------------------

    async def tick(self) -> int:
        """Start pages for new incidents and move the live ones on; the messages planned."""
        now = self.clock.now()
        return await self.store.run(lambda conn: self._plan(conn, now))

    def _plan(self, conn: Connection, now: datetime) -> int:
        wanted = set(self.routes.spec.severities)
        open_ = incident_repo.search(conn, None, IncidentStatus.OPEN.value, OPEN_INCIDENTS_READ)
        for incident_id in repo.unpaged(conn, [i.id for i in open_ if i.severity in wanted]):
            repo.start_page(conn, incident_id, now)
        # opened and resolved since the last sweep: paged once, both in one message
        for incident_id in repo.unpaged_resolved(conn, now - BRIEF_LOOKBACK):
            if incident_repo.get(conn, incident_id).severity in wanted:
                repo.start_page(conn, incident_id, now)
        silences = repo.active_silences(conn, now)
        planned = plan_events(conn, self.routes, silences, self.ids, now)
        for page in repo.live_pages(conn):
            planned += self._step(
                conn, page, incident_repo.get(conn, page.incident_id), silences, now
            )
        return planned

    def _step(
        self,
        conn: Connection,
        page: repo.Page,
        incident: Incident,
        silences: Sequence[repo.Silence],
        now: datetime,
    ) -> int:
        spec, iid = self.routes.spec, incident.id
        events = incident.events or []
        news = [e for e in events if e.id > page.last_event_id]
        seen = max((e.id for e in events), default=page.last_event_id)
        silence = next((s for s in silences if s.matches(incident.playbook, incident.scope)), None)
        muted = None if silence is None else f"silence {silence.id}: {silence.reason}"
        level, n = page.level, 0

        def send(kind: PageKind, routes: Sequence[str], key: str, **extra: Any) -> int:
            text = render(kind, incident, self._url(iid), now, news=news, level=level, **extra)
            return self._plan_messages(conn, incident, kind, routes, key, level, text, muted, now)

        def enter(kind: PageKind, key: str, **values: Any) -> int:
            """Page the current level's routes and start its clocks (reminder, escalation)."""
            at = spec.level(level)
            sent = send(kind, at.routes, key)
            remind_at = _after(now, at.remind_every)
            repo.update_page(
                conn, iid, now, level_since=now, remind_at=remind_at, last_event_id=seen, **values
            )
            return sent

        if incident.status is IncidentStatus.RESOLVED:
            if page.opened_sent:
                n = send(PageKind.RESOLVED, spec.routes_up_to(level), f"{iid}:resolved")
            elif silence is None:  # it came and went unpaged: the first level hears both
                n = send(PageKind.RESOLVED, spec.level(0).routes, f"{iid}:resolved", brief=True)
            repo.update_page(conn, iid, now, status=repo.CLOSED, last_event_id=seen)
            return n
        if incident.acknowledged_at is not None:
            if page.opened_sent and page.status != repo.ACKNOWLEDGED:
                n = send(PageKind.ACKNOWLEDGED, spec.routes_up_to(level), f"{iid}:acknowledged")
            repo.update_page(
                conn, iid, now, status=repo.ACKNOWLEDGED, remind_at=None, last_event_id=seen
            )
            return n
        if silence is not None:
            # nothing goes out; escalation counts the unacknowledged time after it ends
            self._note_silenced(conn, incident, silence, now)
            repo.update_page(conn, iid, now, level_since=now)
            return 0
        current = spec.level(level)
        if not page.opened_sent:
            return enter(PageKind.OPENED, f"{iid}:opened", opened_sent=True)
        due = current.escalate_after
        if due is not None and now >= page.level_since + timedelta(seconds=due):
            level = page.level + 1
            return enter(PageKind.ESCALATED, f"{iid}:escalated:{level}", level=level)
        if page.remind_at is not None and now >= page.remind_at:
            count = page.reminders + 1
            key = f"{iid}:reminder:{count}"
            n = send(PageKind.REMINDER, spec.routes_up_to(level), key, reminder=count)
            repo.update_page(
                conn,
                iid,
                now,
                reminders=count,
                remind_at=_after(now, current.remind_every),
                last_event_id=seen,
            )
        return n

    def _plan_messages(
        self,
        conn: Connection,
        incident: Incident,
        kind: PageKind,
        routes: Sequence[str],
        key: str,
        level: int,
        text: PageText,
        muted: str | None,
        now: datetime,
    ) -> int:
        """One alert row (and its job) per route; a key planned before is left alone."""
        planned: list[str] = []
        for route in routes:
            alert_id = self.ids.new("opa")
            created = repo.add_alert(
                conn,
                alert_id,
                dedupe_key=f"{key}:{route}",
                incident_id=incident.id,
                kind=kind.value,
                route=route,
                level=level,
                title=text.title,
                body=text.body,
                status=repo.SILENCED if muted else repo.PENDING,
                reason=muted,
                now=now,
            )
            if created and not muted:
                jobs.enqueue(
                    conn, self.ids.new("job"), jobs.JobKind.SEND_OPS_ALERT, alert_id, now, now
                )
                planned.append(route)
        if planned:
            message = f"ops paged ({kind.value}) on {', '.join(planned)}"
            details = {"kind": kind.value, "routes": planned, "level": level}
            incident_repo.add_event(
                conn, incident.id, now, IncidentEventKind.NOTE, message, details
            )
            log.warning("ops_page", incident_id=incident.id, kind=kind.value, routes=planned)
        return len(planned)

    def _note_silenced(
        self, conn: Connection, incident: Incident, silence: repo.Silence, now: datetime
    ) -> None:
        """Once per silence and incident: the timeline says why nobody was paged."""
        reason = f"silence {silence.id} by {silence.created_by}: {silence.reason}"
        created = repo.add_alert(
            conn,
            self.ids.new("opa"),
            dedupe_key=f"{incident.id}:silenced:{silence.id}",
            incident_id=incident.id,
            kind="silenced",
            route="-",
            level=0,
            title=f"held back by silence {silence.id}",
            body=reason,
            status=repo.SILENCED,
            reason=reason[:500],
            now=now,
        )
        if created:
            until = f"pages held back until {silence.ends_at:%Y-%m-%d %H:%M} UTC: {reason}"
            incident_repo.add_event(conn, incident.id, now, IncidentEventKind.NOTE, until)

    def _url(self, incident_id: str) -> str:
        return self.routes.spec.incident_url.format(incident_id=incident_id)

    # -- the send_ops_alert job ---------------------------------------------------------

    async def deliver(self, alert_id: str) -> float | None:
        """Send one planned message; None when finished, else seconds until next time."""
        alert = await self.store.run(lambda conn: repo.get_alert(conn, alert_id))
        if alert is None or alert.status != repo.PENDING:
            return None
        url = self.routes.urls.get(alert.route)
        if url is None:
            await self._finish(alert, repo.FAILED, "the route is no longer configured")
            return None
        channel = AppriseChannel(alert.route, with_header(url, ALERT_KEY_HEADER, alert.dedupe_key))
        body = json.dumps({"subject": alert.title, "text": alert.body}).encode()
        start = self.clock.monotonic()
        sent = await channel.send(Message(alert.dedupe_key, "", body))
        seconds = self.clock.monotonic() - start
        now = self.clock.now()
        (
            PAGES_SENT.labels(alert.route, alert.kind)
            if sent.delivered
            else PAGES_FAILED.labels(alert.route)
        ).inc()
        log.info(
            "ops_page_try",
            alert_id=alert.id,
            incident_id=alert.incident_id,
            kind=alert.kind,
            route=alert.route,
            to=masked_url(url),
            delivered=sent.delivered,
            error=sent.error,
        )

        def record(conn: Connection) -> None:
            repo.add_attempt(
                conn,
                alert.id,
                route=alert.route,
                delivered=sent.delivered,
                error=sent.error,
                latency_ms=round(seconds * 1000),
                at=now,
            )

        await self.store.run(record)
        if sent.delivered:
            await self._finish(alert, repo.SENT, None)
            return None
        tries, retry = alert.tries + 1, self.routes.spec.retry
        if sent.retryable and tries <= len(retry):
            await self.store.run(
                lambda conn: repo.update_alert(conn, alert.id, now, tries=tries, reason=sent.error)
            )
            return retry[tries - 1]
        await self._finish(alert, repo.FAILED, sent.error or "not accepted", tries=tries)
        return None

    async def _finish(
        self, alert: repo.Alert, status: str, reason: str | None, *, tries: int | None = None
    ) -> None:
        now = self.clock.now()
        values: dict[str, object] = {"status": status, "reason": reason}
        if status == repo.SENT:
            values["sent_at"] = now
        if tries is not None:
            values["tries"] = tries
        await self.store.run(lambda conn: repo.update_alert(conn, alert.id, now, **values))
        if status == repo.FAILED:
            # the page itself could not go out: the log line is what is left to alert on
            log.error(
                "ops_page_undelivered",
                alert_id=alert.id,
                incident_id=alert.incident_id,
                route=alert.route,
                reason=reason,
            )


def _after(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)
