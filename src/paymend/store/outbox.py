"""The transactional outbox: events written with the state change they describe.

A publisher (the worker) reads unpublished events in order and marks them published
after delivery, so every event is delivered at least once under its stable id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.events import EventType
from paymend.store.prepared import Prepared
from paymend.store.tables import events


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    merchant_id: str
    type: str
    subject_id: str
    payload: dict[str, Any]
    created_at: datetime
    published_at: datetime | None


_INSERT = Prepared(events.insert())  # every state change writes events: store/prepared.py


def add(
    conn: Connection,
    event_id: str,
    merchant_id: str,
    type: EventType,
    subject_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    add_rows(conn, [row(event_id, merchant_id, type, subject_id, payload, now)])


def row(
    event_id: str,
    merchant_id: str,
    type: EventType,
    subject_id: str,
    payload: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """An event as `add_rows` writes it."""
    return {
        "id": event_id,
        "merchant_id": merchant_id,
        "type": type.value,
        "subject_id": subject_id,
        "payload": payload,
        "created_at": now,
    }


def add_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Events (`row`) in one statement, in list order (their `seq`): the events of one
    state change cost one statement, not one each (a deferred write: store/prepared.py)."""
    _INSERT.write_rows(conn, rows)


def for_subject(conn: Connection, subject_id: str) -> list[Event]:
    rows = conn.execute(
        sa.select(events).where(events.c.subject_id == subject_id).order_by(events.c.seq)
    )
    return [_event(r) for r in rows]


# the relay's statements, built once: it reads and marks a batch every sweep
_UNPUBLISHED = (
    sa.select(events)
    .where(events.c.published_at.is_(None))
    .order_by(events.c.seq)
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)
_MARK_PUBLISHED = (
    events.update()
    .where(events.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(published_at=sa.bindparam("b_now", type_=events.c.published_at.type))
)


def unpublished(conn: Connection, limit: int = 100) -> list[Event]:
    return [_event(r) for r in conn.execute(_UNPUBLISHED, {"b_limit": limit})]


class Head(NamedTuple):
    """What routing an event to its webhooks needs of it: no payload to decode."""

    id: str
    merchant_id: str
    type: str


_UNPUBLISHED_HEADS = Prepared(
    sa.select(events.c.id, events.c.merchant_id, events.c.type)
    .where(events.c.published_at.is_(None))
    .order_by(events.c.seq)
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)


def unpublished_heads(conn: Connection, limit: int = 100) -> list[Head]:
    """The events `unpublished` gives, without their payloads (a relay with no other
    reader of the outbox decodes none)."""
    return [Head._make(r) for r in _UNPUBLISHED_HEADS.all(conn, {"b_limit": limit})]


def of_type_since(conn: Connection, type: EventType, seq: int) -> list[tuple[int, str]]:
    """(seq, subject id) of the events of `type` written after `seq`, in order: a follower
    of the outbox that remembers where it stopped."""
    query = (
        sa.select(events.c.seq, events.c.subject_id)
        .where(events.c.seq > seq, events.c.type == type.value)
        .order_by(events.c.seq)
    )
    return [(r.seq, r.subject_id) for r in conn.execute(query)]


def mark_published(conn: Connection, event_ids: list[str], now: datetime) -> None:
    if event_ids:
        conn.execute(_MARK_PUBLISHED, {"b_ids": event_ids, "b_now": now})


def _event(row: sa.Row[Any]) -> Event:
    return Event(
        row.id,
        row.merchant_id,
        row.type,
        row.subject_id,
        dict(row.payload),
        row.created_at,
        row.published_at,
    )


from_row = _event  # for repositories that page through events
