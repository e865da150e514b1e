"""Ops pages, their messages and tries, and silences.

A page is an incident's paging state, keyed by the incident: two planners cannot both
start one. Each message of a page to one route is an alert row whose `dedupe_key`
(`<incident>:<kind>[:<n>]:<route>`) is unique, so no message is planned twice whoever
plans it; its delivery is a `send_ops_alert` job and every try a row of
`ops_alert_attempts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict, NotFound
from paymend.store.tables import (
    incidents,
    ops_alert_attempts,
    ops_alerts,
    ops_pages,
    ops_silences,
)

OPEN, ACKNOWLEDGED, CLOSED = "open", "acknowledged", "closed"  # a page
PENDING, SENT, FAILED, SILENCED = "pending", "sent", "failed", "silenced"  # an alert
MATCHERS = ("playbook", "channel", "bank", "region")


@dataclass(frozen=True, slots=True)
class Page:
    incident_id: str
    status: str
    level: int
    level_since: datetime
    opened_sent: bool
    reminders: int
    remind_at: datetime | None
    last_event_id: int


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    dedupe_key: str
    incident_id: str
    kind: str
    route: str
    level: int
    title: str
    body: str
    status: str
    tries: int
    reason: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: dict[str, str]
    reason: str
    created_by: str
    created_at: datetime
    ends_at: datetime
    ended_at: datetime | None
    ended_by: str | None

    def matches(self, playbook: str, scope: Mapping[str, str]) -> bool:
        """Every field the silence sets equals the incident's (its playbook, its scope)."""
        have = {"playbook": playbook, **scope}
        return all(have.get(k) == v for k, v in self.matchers.items())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "silence",
            **{k: self.matchers.get(k) for k in MATCHERS},
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
        }


def _insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any], key: Any) -> bool:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports no row count for this statement
    return conn.execute(stmt.returning(key)).first() is not None


# -- pages -------------------------------------------------------------------------------


def start_page(conn: Connection, incident_id: str, now: datetime) -> bool:
    """The incident's page, unless it has one; True when this call made it."""
    values = {
        "incident_id": incident_id,
        "status": OPEN,
        "level": 0,
        "level_since": now,
        "opened_sent": False,
        "reminders": 0,
        "remind_at": None,
        "last_event_id": 0,
        "created_at": now,
        "updated_at": now,
    }
    return _insert_ignore(conn, ops_pages, values, ops_pages.c.incident_id)


def unpaged(conn: Connection, incident_ids: list[str]) -> list[str]:
    """Those of `incident_ids` without a page yet."""
    if not incident_ids:
        return []
    rows = conn.execute(
        sa.select(ops_pages.c.incident_id).where(ops_pages.c.incident_id.in_(incident_ids))
    )
    have = {r.incident_id for r in rows}
    return [i for i in incident_ids if i not in have]


def unpaged_resolved(conn: Connection, since: datetime, limit: int = 200) -> list[str]:
    """Incidents opened and resolved since `since` that never had a page: they came and
    went between two sweeps of the planner."""
    rows = conn.execute(
        sa.select(incidents.c.id)
        .outerjoin(ops_pages, ops_pages.c.incident_id == incidents.c.id)
        .where(
            incidents.c.status == "resolved",
            incidents.c.opened_at >= since,  # the (status, opened_at) index
            ops_pages.c.incident_id.is_(None),
        )
        .order_by(incidents.c.opened_at, incidents.c.id)
        .limit(limit)
    )
    return [r.id for r in rows]


def live_pages(conn: Connection, limit: int = 200) -> list[Page]:
    """Pages not closed, each locked for this transaction; another worker's skip them."""
    rows = conn.execute(
        sa.select(ops_pages)
        .where(ops_pages.c.status != CLOSED)
        .order_by(ops_pages.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_page(r) for r in rows]


def get_page(conn: Connection, incident_id: str) -> Page | None:
    row = conn.execute(sa.select(ops_pages).where(ops_pages.c.incident_id == incident_id)).first()
    return None if row is None else _page(row)


def update_page(conn: Connection, incident_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        ops_pages.update()
        .where(ops_pages.c.incident_id == incident_id)
        .values(updated_at=now, **values)
    )


# -- alerts ------------------------------------------------------------------------------


def add_alert(
    conn: Connection,
    alert_id: str,
    *,
    dedupe_key: str,
    incident_id: str,
    kind: str,
    route: str,
    level: int,
    title: str,
    body: str,
    status: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Plan one message to one route unless it was planned; True when this call did."""
    values = {
        "id": alert_id,
        "dedupe_key": dedupe_key,
        "incident_id": incident_id,
        "kind": kind,
        "route": route,
        "level": level,
        "title": title[:300],
        "body": body,
        "status": status,
        "tries": 0,
        "reason": reason,
        "created_at": now,
        "updated_at": now,
    }
    return _insert_ignore(conn, ops_alerts, values, ops_alerts.c.id)


def get_alert(conn: Connection, alert_id: str) -> Alert | None:
    row = conn.execute(sa.select(ops_alerts).where(ops_alerts.c.id == alert_id)).first()
    return None if row is None else _alert(row)


def alerts_of(conn: Connection, incident_id: str) -> list[Alert]:
    rows = conn.execute(
        sa.select(ops_alerts)
        .where(ops_alerts.c.incident_id == incident_id)
        .order_by(ops_alerts.c.created_at, ops_alerts.c.id)
    )
    return [_alert(r) for r in rows]


def update_alert(conn: Connection, alert_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        ops_alerts.update().where(ops_alerts.c.id == alert_id).values(updated_at=now, **values)
    )


def add_attempt(
    conn: Connection,
    alert_id: str,
    *,
    route: str,
    delivered: bool,
    error: str | None,
    latency_ms: int,
    at: datetime,
) -> None:
    conn.execute(
        ops_alert_attempts.insert(),
        {
            "alert_id": alert_id,
            "route": route,
            "delivered": delivered,
            "error": error[:500] if error else None,
            "latency_ms": latency_ms,
            "at": at,
        },
    )


def attempts(conn: Connection, alert_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(ops_alert_attempts)
        .where(ops_alert_attempts.c.alert_id == alert_id)
        .order_by(ops_alert_attempts.c.id)
    )
    return [dict(r._mapping) for r in rows]


# -- silences ----------------------------------------------------------------------------


def add_silence(
    conn: Connection,
    silence_id: str,
    matchers: Mapping[str, str],
    reason: str,
    actor: str,
    ends_at: datetime,
    now: datetime,
) -> Silence:
    silence = Silence(silence_id, dict(matchers), reason, actor, now, ends_at, None, None)
    conn.execute(
        ops_silences.insert(),
        {
            "id": silence_id,
            "matchers": silence.matchers,
            "reason": reason,
            "created_by": actor,
            "created_at": now,
            "ends_at": ends_at,
        },
    )
    return silence


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    rows = conn.execute(
        sa.select(ops_silences)
        .where(ops_silences.c.ended_at.is_(None), ops_silences.c.ends_at > now)
        .order_by(ops_silences.c.created_at, ops_silences.c.id)
    )
    return [_silence(r) for r in rows]


def end_silence(conn: Connection, silence_id: str, actor: str, now: datetime) -> Silence:
    """End a silence early; NotFound for an unknown one, Conflict when it already ended."""
    row = conn.execute(
        sa.select(ops_silences).where(ops_silences.c.id == silence_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound("silence_not_found", f"no silence '{silence_id}'", param="id")
    current = _silence(row)
    if current.ended_at is not None or current.ends_at <= now:
        raise Conflict("silence_ended", f"silence '{silence_id}' has ended already")
    conn.execute(
        ops_silences.update()
        .where(ops_silences.c.id == silence_id)
        .values(ended_at=now, ended_by=actor)
    )
    return _silence(
        conn.execute(sa.select(ops_silences).where(ops_silences.c.id == silence_id)).one()
    )


def _page(r: sa.Row[Any]) -> Page:
    return Page(
        r.incident_id,
        r.status,
        r.level,
        r.level_since,
        bool(r.opened_sent),
        r.reminders,
        r.remind_at,
        r.last_event_id,
    )


def _alert(r: sa.Row[Any]) -> Alert:
    return Alert(
        r.id,
        r.dedupe_key,
        r.incident_id,
        r.kind,
        r.route,
        r.level,
        r.title,
        r.body,
        r.status,
        r.tries,
        r.reason,
        r.created_at,
        r.sent_at,
    )


def _silence(r: sa.Row[Any]) -> Silence:
    return Silence(
        r.id,
        dict(r.matchers),
        r.reason,
        r.created_by,
        r.created_at,
        r.ends_at,
        r.ended_at,
        r.ended_by,
    )
