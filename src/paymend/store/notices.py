"""Customer notice intents and their tries.

An intent is written once per (payment, kind): its `dedupe_key` is unique in the
database, so two workers relaying the same event, or a relay re-run after a crash,
cannot create a second one and so cannot send twice. Its job (store/jobs.py) carries
its delivery; every try is a row of `notice_attempts` with the provider's answer and the
recipient masked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from paymend.store.tables import events, notice_attempts, notice_intents, payments

PENDING, SENT, DROPPED, FAILED = "pending", "sent", "dropped", "failed"


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    dedupe_key: str
    merchant_id: str
    payment_id: str
    order_id: str
    kind: str
    event_id: str
    customer_key: str | None
    status: str
    channel_index: int
    tries: int
    channel: str | None
    reason: str | None
    facts: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None


def dedupe_key(payment_id: str, kind: str) -> str:
    return f"{payment_id}:{kind}"


def create(
    conn: Connection,
    intent_id: str,
    *,
    merchant_id: str,
    payment_id: str,
    order_id: str,
    kind: str,
    event_id: str,
    customer_key: str | None,
    facts: dict[str, Any],
    now: datetime,
) -> bool:
    """Insert the intent unless one of this (payment, kind) exists; True when inserted."""
    values = {
        "id": intent_id,
        "dedupe_key": dedupe_key(payment_id, kind),
        "merchant_id": merchant_id,
        "payment_id": payment_id,
        "order_id": order_id,
        "kind": kind,
        "event_id": event_id,
        "customer_key": customer_key,
        "status": PENDING,
        "channel_index": 0,
        "tries": 0,
        "facts": facts,
        "created_at": now,
        "updated_at": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(notice_intents).values(values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports no row count for this statement
    return conn.execute(stmt.returning(notice_intents.c.id)).first() is not None


def get(conn: Connection, intent_id: str) -> Intent | None:
    row = conn.execute(sa.select(notice_intents).where(notice_intents.c.id == intent_id)).first()
    return _intent(row) if row is not None else None


def for_payment(conn: Connection, payment_id: str) -> list[Intent]:
    rows = conn.execute(
        sa.select(notice_intents)
        .where(notice_intents.c.payment_id == payment_id)
        .order_by(notice_intents.c.created_at, notice_intents.c.id)
    )
    return [_intent(r) for r in rows]


def of_order(conn: Connection, merchant_id: str, order_id: str) -> list[Intent]:
    rows = conn.execute(
        sa.select(notice_intents).where(
            notice_intents.c.merchant_id == merchant_id, notice_intents.c.order_id == order_id
        )
    )
    return [_intent(r) for r in rows]


def update(conn: Connection, intent_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        notice_intents.update()
        .where(notice_intents.c.id == intent_id)
        .values(updated_at=now, **values)
    )


def drop_pending(conn: Connection, intent_id: str, reason: str, now: datetime) -> bool:
    """Drop a pending intent (a failure notice the payment outlived); True when dropped."""
    result = conn.execute(
        notice_intents.update()
        .where(notice_intents.c.id == intent_id, notice_intents.c.status == PENDING)
        .values(status=DROPPED, reason=reason, updated_at=now)
    )
    return result.rowcount == 1


def reserve(
    conn: Connection, intent_id: str, customer_key: str, since: datetime, limit: int, now: datetime
) -> bool:
    """Count the intent against its customer's limit (`sent_at`), unless `limit` notices
    went to them since `since`; False then. Checked and written under a lock on the
    customer, so two workers sending to one customer cannot both pass the limit
    (SQLite's writers already take turns)."""
    if conn.dialect.name == "postgresql":
        digest = hashlib.blake2b(f"notice\0{customer_key}".encode(), digest_size=8)
        key = int.from_bytes(digest.digest(), "big", signed=True)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    query = sa.select(sa.func.count()).where(
        notice_intents.c.customer_key == customer_key, notice_intents.c.sent_at >= since
    )
    if int(conn.execute(query).scalar_one()) >= limit:
        return False
    update(conn, intent_id, now, sent_at=now)
    return True


def order_paid(conn: Connection, merchant_id: str, order_id: str) -> bool:
    """Whether some payment of the order succeeded (then a failure notice is moot)."""
    query = sa.select(payments.c.id).where(
        payments.c.merchant_id == merchant_id,
        payments.c.order_id == order_id,
        payments.c.status.in_(("succeeded", "partially_refunded", "refunded")),
    )
    return conn.execute(query.limit(1)).first() is not None


def add_attempt(
    conn: Connection,
    intent_id: str,
    *,
    channel: str,
    recipient: str,
    delivered: bool,
    code: int | None,
    error: str | None,
    latency_ms: int,
    at: datetime,
) -> None:
    conn.execute(
        notice_attempts.insert(),
        {
            "intent_id": intent_id,
            "channel": channel,
            "recipient": recipient,
            "delivered": delivered,
            "code": code,
            "error": error,
            "latency_ms": latency_ms,
            "at": at,
        },
    )


def attempts(conn: Connection, intent_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(notice_attempts)
        .where(notice_attempts.c.intent_id == intent_id)
        .order_by(notice_attempts.c.id)
    )
    return [dict(r._mapping) for r in rows]


def deliveries(conn: Connection) -> list[tuple[str, str, datetime, datetime | None]]:
    """Every intent as (kind, status, when its event was published, when it was first
    delivered or None): how long customers waited (the lab's figures)."""
    delivered = (
        sa.select(notice_attempts.c.intent_id, sa.func.min(notice_attempts.c.at).label("at"))
        .where(notice_attempts.c.delivered.is_(True))
        .group_by(notice_attempts.c.intent_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            notice_intents.c.kind, notice_intents.c.status, events.c.created_at, delivered.c.at
        )
        .join(events, events.c.id == notice_intents.c.event_id)
        .outerjoin(delivered, delivered.c.intent_id == notice_intents.c.id)
    )
    return [(r.kind, r.status, r.created_at, r.at) for r in rows]


def _intent(row: sa.Row[Any]) -> Intent:
    return Intent(
        row.id,
        row.dedupe_key,
        row.merchant_id,
        row.payment_id,
        row.order_id,
        row.kind,
        row.event_id,
        row.customer_key,
        row.status,
        row.channel_index,
        row.tries,
        row.channel,
        row.reason,
        dict(row.facts),
        row.created_at,
        row.sent_at,
    )
