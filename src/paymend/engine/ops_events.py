"""Failures ops must hear of that open no incident, paged like an incident's first word.

A playbook that alerts without opening an incident, a job given up, a webhook endpoint
given up on, a second charge of one payment, an amount a provider disagrees on, a
reconciliation mismatch not fixed: each is a log line where it is found (`ops_alert`,
`reconciliation_mismatch`), and `raise_event` records it there too, once
per fact (its dedupe key), in the transaction that found it when there is one. On each
sweep the pager (engine/ops_alerts.py) plans every raised event as one message per
route of the first level: the routes file's severities and the silences apply as to
incidents (a silence matches an event's playbook and scope), each message is an
`ops_alerts` row with a unique key and a `send_ops_alert` job, and every planned event
is audit-logged. There is nothing to acknowledge: no reminders, no escalation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from paymend.engine.ids import IdFactory
from paymend.notify.ops_messages import event_text
from paymend.notify.ops_routes import Routes
from paymend.observability import get_logger
from paymend.store import controls as audit_repo
from paymend.store import jobs
from paymend.store import ops_alerts as alerts_repo
from paymend.store import ops_events as repo
from paymend.store.database import Connection

log = get_logger("paymend.ops_alerts")

ACTOR = "ops_alerts"


class OpsEventKind(StrEnum):
    PLAYBOOK_ALERT = "playbook_alert"
    JOB_BURIED = "job_buried"
    WEBHOOK_GIVEN_UP = "webhook_given_up"
    DUPLICATE_CHARGE = "duplicate_charge"
    AMOUNT_MISMATCH = "amount_mismatch"  # a provider's notification names another amount
    REFUND_MISMATCH = "refund_mismatch"  # a provider's word on a refund settled otherwise
    RECONCILIATION_MISMATCH = "reconciliation"  # the store and a settlement report disagree


# how loud each is when the finder does not say (a playbook gives its own)
SEVERITY: Mapping[OpsEventKind, str] = {
    OpsEventKind.PLAYBOOK_ALERT: "major",
    OpsEventKind.JOB_BURIED: "major",
    OpsEventKind.WEBHOOK_GIVEN_UP: "minor",
    OpsEventKind.DUPLICATE_CHARGE: "critical",
    OpsEventKind.AMOUNT_MISMATCH: "critical",
    OpsEventKind.REFUND_MISMATCH: "critical",
    OpsEventKind.RECONCILIATION_MISMATCH: "critical",
}


def raise_event(
    conn: Connection,
    now: datetime,
    kind: OpsEventKind,
    key: str,
    title: str,
    *,
    severity: str | None = None,
    playbook: str | None = None,
    scope: Mapping[str, str] | None = None,
    **facts: Any,
) -> bool:
    """Record that ops must hear of this, once per `key` (the fact: `job:<id>`); True
    when this call recorded it. `facts`: ids and codes only, never contact data."""
    return repo.record(
        conn,
        f"{kind.value}:{key}",
        kind=kind.value,
        severity=severity or SEVERITY[kind],
        title=title,
        now=now,
        playbook=playbook,
        scope=scope,
        facts=facts,
    )


def plan_events(
    conn: Connection,
    routes: Routes,
    silences: Sequence[alerts_repo.Silence],
    ids: IdFactory,
    now: datetime,
) -> int:
    """Plan the raised events' messages; returns how many messages were planned."""
    spec = routes.spec
    wanted = {s.value for s in spec.severities}
    first = spec.level(0).routes
    planned = 0
    for event in repo.raised(conn):
        silence = next((s for s in silences if s.matches(event.playbook or "", event.scope)), None)
        if event.severity not in wanted:
            repo.set_status(conn, event.id, repo.NOT_PAGED, now)
            continue
        text = event_text(
            event.severity, event.title, event.facts, event.scope, event.created_at, now
        )
        muted = None if silence is None else f"silence {silence.id}: {silence.reason}"
        sent: list[str] = []
        for route in first:
            alert_id = ids.new("opa")
            created = alerts_repo.add_alert(
                conn,
                alert_id,
                dedupe_key=f"{event.id}:alert:{route}",
                incident_id=event.id,
                kind="alert",
                route=route,
                level=0,
                title=text.title,
                body=text.body,
                status=alerts_repo.SILENCED if muted else alerts_repo.PENDING,
                reason=muted,
                now=now,
            )
            if created and not muted:
                jobs.enqueue(conn, ids.new("job"), jobs.JobKind.SEND_OPS_ALERT, alert_id, now, now)
                sent.append(route)
        status = repo.SILENCED if muted else repo.PAGED
        repo.set_status(conn, event.id, status, now)
        details = {"kind": event.kind, "severity": event.severity, "routes": sent}
        action = "ops_alerts.silenced" if muted else "ops_alerts.page"
        audit_repo.audit(
            conn, now, ACTOR, action, f"ops_event:{event.id}", muted or event.title, details
        )
        if sent:
            log.warning("ops_page", event_id=event.id, kind=event.kind, routes=sent)
        planned += len(sent)
    return planned
