"""Ops events: failures ops must hear of that opened no incident, each recorded once.

A row is written where the failure is found (in its transaction, when it has one) with
a dedupe key naming the fact (`job:<id>:buried`), so a retried transaction, a replayed
notification or two workers record it once. The pager (engine/ops_events.py) takes the
raised rows on its next sweep, each locked by the worker planning it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from paymend.store.tables import ops_events

RAISED, PAGED, SILENCED, NOT_PAGED = "raised", "paged", "silenced", "not_paged"


@dataclass(frozen=True, slots=True)
class OpsEvent:
    id: str
    dedupe_key: str
    kind: str
    severity: str
    playbook: str | None
    scope: dict[str, str]
    title: str
    facts: dict[str, Any]
    status: str
    created_at: datetime


def event_id(dedupe_key: str) -> str:
    """The event's id, from its key: the same fact gets the same id wherever it is found."""
    digest = hashlib.sha256(dedupe_key.encode()).digest()[:15]
    return "ope_" + base64.b32encode(digest).decode().lower()


def record(
    conn: Connection,
    dedupe_key: str,
    *,
    kind: str,
    severity: str,
    title: str,
    now: datetime,
    playbook: str | None = None,
    scope: Mapping[str, str] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> bool:
    """Record the event unless it was; True when this call did."""
    values = {
        "id": event_id(dedupe_key),
        "dedupe_key": dedupe_key[:200],
        "kind": kind,
        "severity": severity,
        "playbook": playbook,
        "scope": dict(scope or {}),
        "title": title[:300],
        "facts": dict(facts or {}),
        "status": RAISED,
        "created_at": now,
        "updated_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ops_events).values(values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports no row count for this statement
    return conn.execute(stmt.returning(ops_events.c.id)).first() is not None


def raised(conn: Connection, limit: int = 200) -> list[OpsEvent]:
    """Events not yet planned, oldest first, each locked for this transaction (another
    worker's planner skips them)."""
    rows = conn.execute(
        sa.select(ops_events)
        .where(ops_events.c.status == RAISED)
        .order_by(ops_events.c.created_at, ops_events.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_event(r) for r in rows]


def get(conn: Connection, id_: str) -> OpsEvent | None:
    row = conn.execute(sa.select(ops_events).where(ops_events.c.id == id_)).first()
    return None if row is None else _event(row)


def of_kind(conn: Connection, kind: str) -> list[OpsEvent]:
    rows = conn.execute(
        sa.select(ops_events).where(ops_events.c.kind == kind).order_by(ops_events.c.created_at)
    )
    return [_event(r) for r in rows]


def set_status(conn: Connection, id_: str, status: str, now: datetime) -> None:
    conn.execute(
        ops_events.update().where(ops_events.c.id == id_).values(status=status, updated_at=now)
    )


def _event(r: sa.Row[Any]) -> OpsEvent:
    return OpsEvent(
        r.id,
        r.dedupe_key,
        r.kind,
        r.severity,
        r.playbook,
        dict(r.scope),
        r.title,
        dict(r.facts),
        r.status,
        r.created_at,
    )
