"""Listing a merchant's payments and events: filters, newest first, by keyset pages.

Pages are keyset, not offset: each page starts after the last row of the one before (its
creation time and id), so a page costs the same however deep it is, and payments created
while a client pages through never shift rows between pages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.payment import Attempt, Payment, PaymentStatus, Refund
from paymend.store import outbox, refunds
from paymend.store.payment_rows import attempt_from_row, payment_from_row
from paymend.store.tables import attempts, events, payments
from paymend.store.tables import refunds as refund_rows

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PaymentQuery:
    """What to list; every filter given must hold (None: any)."""

    order_id: str | None = None
    statuses: tuple[PaymentStatus, ...] = ()
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    customer_id: str | None = None
    customer_email_index: str | None = None  # blind indexes (store/pii.py), never clear text
    customer_phone_index: str | None = None
    channel: str | None = None  # a provider any attempt of the payment went to
    failure_code: str | None = None


def payments_page(
    conn: Connection,
    merchant_id: str,
    query: PaymentQuery,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[Payment]:
    """Up to `limit` payments matching `query`, newest first, after the (created_at, id)
    of the last row of the previous page."""
    p = payments.c
    where: list[sa.ColumnElement[bool]] = [p.merchant_id == merchant_id]
    if query.order_id is not None:
        where.append(p.order_id == query.order_id)
    if query.statuses:
        where.append(p.status.in_([s.value for s in query.statuses]))
    if query.created_gte is not None:
        where.append(p.created_at >= query.created_gte)
    if query.created_lt is not None:
        where.append(p.created_at < query.created_lt)
    if query.customer_id is not None:
        where.append(p.customer_id == query.customer_id)
    if query.customer_email_index is not None:
        where.append(p.customer_email_index == query.customer_email_index)
    if query.customer_phone_index is not None:
        where.append(p.customer_phone_index == query.customer_phone_index)
    if query.failure_code is not None:
        where.append(p.failure_code == query.failure_code)
    if query.channel is not None:
        where.append(
            sa.exists().where(attempts.c.payment_id == p.id, attempts.c.provider == query.channel)
        )
    if after is not None:
        at, last_id = after
        where.append(sa.or_(p.created_at < at, sa.and_(p.created_at == at, p.id < last_id)))
    rows = conn.execute(
        sa.select(payments).where(*where).order_by(p.created_at.desc(), p.id.desc()).limit(limit)
    )
    return [payment_from_row(r) for r in rows]


def cursor_of(conn: Connection, merchant_id: str, payment_id: str) -> tuple[datetime, str] | None:
    """The keyset position of one of the merchant's payments (a page's last row)."""
    row = conn.execute(
        sa.select(payments.c.created_at, payments.c.id).where(
            payments.c.merchant_id == merchant_id, payments.c.id == payment_id
        )
    ).first()
    return (row.created_at, row.id) if row else None


def attempts_of(conn: Connection, payment_ids: Sequence[str]) -> dict[str, list[Attempt]]:
    """The attempts of several payments in one query, each list in order."""
    order = (attempts.c.payment_id, attempts.c.seq)
    return _by_payment(conn, attempts, payment_ids, order, attempt_from_row)


def refunds_of(conn: Connection, payment_ids: Sequence[str]) -> dict[str, list[Refund]]:
    """The refunds of several payments in one query, oldest first."""
    order = (refund_rows.c.created_at, refund_rows.c.id)
    return _by_payment(conn, refund_rows, payment_ids, order, refunds.from_row)


def _by_payment(
    conn: Connection,
    table: sa.Table,
    payment_ids: Sequence[str],
    order: tuple[sa.ColumnElement[Any], ...],
    from_row: Callable[[sa.Row[Any]], T],
) -> dict[str, list[T]]:
    """Rows of `table` belonging to any of `payment_ids`, grouped by payment, in `order`."""
    found: dict[str, list[T]] = defaultdict(list)
    if payment_ids:
        rows = conn.execute(
            sa.select(table).where(table.c.payment_id.in_(payment_ids)).order_by(*order)
        )
        for r in rows:
            found[r.payment_id].append(from_row(r))
    return found


def events_page(
    conn: Connection,
    merchant_id: str,
    limit: int,
    *,
    types: tuple[str, ...] = (),
    subject_id: str | None = None,
    after_event: str | None = None,
) -> list[outbox.Event] | None:
    """Up to `limit` of the merchant's events, newest first, after the event
    `after_event` (None when that event is not the merchant's)."""
    e = events.c
    where: list[sa.ColumnElement[bool]] = [e.merchant_id == merchant_id]
    if types:
        where.append(e.type.in_(types))
    if subject_id is not None:
        where.append(e.subject_id == subject_id)
    if after_event is not None:
        seq = conn.execute(
            sa.select(e.seq).where(e.merchant_id == merchant_id, e.id == after_event)
        ).scalar_one_or_none()
        if seq is None:
            return None
        where.append(e.seq < seq)
    rows = conn.execute(sa.select(events).where(*where).order_by(e.seq.desc()).limit(limit))
    return [outbox.from_row(r) for r in rows]


def event(conn: Connection, merchant_id: str, event_id: str) -> outbox.Event | None:
    row = conn.execute(
        sa.select(events).where(events.c.merchant_id == merchant_id, events.c.id == event_id)
    ).first()
    return outbox.from_row(row) if row else None
