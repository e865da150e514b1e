"""Webhook deliveries: one per (event, endpoint), and the log of every try.

A delivery is created by the outbox relay with its job, in the transaction that marks
the event published; each try appends to `webhook_attempts` and updates the delivery,
until it is delivered or given up (failed).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store import outbox
from paymend.store.outbox import Event, Head
from paymend.store.tables import events, merchants, webhook_attempts, webhook_deliveries


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # tries go on
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: three days of tries


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    merchant_id: str
    url: str
    status: DeliveryStatus
    tries: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Due:
    """A pending delivery with what its next try sends: the event and the endpoint's
    signing secret."""

    delivery: Delivery
    event: Event
    secret: str


# built once: the relay asks for every batch
_SETTINGS = sa.select(merchants.c.id, merchants.c.settings).where(
    merchants.c.id.in_(sa.bindparam("b_ids", expanding=True))
)


def merchant_settings(conn: Connection, merchant_ids: Collection[str]) -> dict[str, Any]:
    """Each merchant's settings (webhook_url, webhook_secret, ...), by id."""
    rows = conn.execute(_SETTINGS, {"b_ids": list(merchant_ids)})
    return {r.id: r.settings for r in rows}


_INSERT = webhook_deliveries.insert()


def create(conn: Connection, delivery_id: str, event: Event, url: str, now: datetime) -> None:
    create_many(conn, [(delivery_id, event, url)], now)


def create_many(
    conn: Connection, deliveries: Sequence[tuple[str, Event | Head, str]], now: datetime
) -> None:
    """Pending deliveries (id, event, url), in one round trip (executemany)."""
    if not deliveries:
        return
    conn.execute(
        _INSERT,
        [
            {
                "id": delivery_id,
                "event_id": event.id,
                "merchant_id": event.merchant_id,
                "url": url,
                "status": DeliveryStatus.PENDING.value,
                "tries": 0,
                "created_at": now,
            }
            for delivery_id, event, url in deliveries
        ],
    )


def due(conn: Connection, delivery_id: str) -> Due | None:
    """The delivery with its event and secret, if it is still pending."""
    d = conn.execute(
        sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    ).first()
    if d is None or d.status != DeliveryStatus.PENDING:
        return None
    e = conn.execute(sa.select(events).where(events.c.id == d.event_id)).one()
    m = conn.execute(sa.select(merchants.c.settings).where(merchants.c.id == d.merchant_id)).one()
    delivery = Delivery(
        d.id, d.event_id, d.merchant_id, d.url, DeliveryStatus(d.status), d.tries, d.created_at
    )
    return Due(delivery, outbox.from_row(e), str((m.settings or {}).get("webhook_secret", "")))


def record_try(
    conn: Connection,
    delivery_id: str,
    at: datetime,
    *,
    tries: int,
    status_code: int | None,
    error: str | None,
    latency_ms: int,
    status: DeliveryStatus,
) -> None:
    """Log one try and leave the delivery in `status` after `tries` tries."""
    conn.execute(
        webhook_attempts.insert(),
        {
            "delivery_id": delivery_id,
            "at": at,
            "status_code": status_code,
            "error": error,
            "latency_ms": latency_ms,
        },
    )
    values: dict[str, object] = {
        "tries": tries,
        "last_status_code": status_code,
        "last_error": error,
    }
    if status is DeliveryStatus.DELIVERED:
        values.update(status=status.value, delivered_at=at)
    elif status is DeliveryStatus.FAILED:
        values.update(status=status.value)
    conn.execute(
        webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_id).values(**values)
    )


def of_events(conn: Connection, event_ids: Collection[str]) -> list[dict[str, Any]]:
    """The deliveries of these events (a payment's page shows what its merchant got)."""
    if not event_ids:
        return []
    d = webhook_deliveries.c
    rows = conn.execute(
        sa.select(d.event_id, d.url, d.status, d.tries, d.last_status_code, d.delivered_at)
        .where(d.event_id.in_(list(event_ids)))
        .order_by(d.created_at, d.id)
    )
    return [dict(r._mapping) for r in rows]
