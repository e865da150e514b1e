"""Provider calls (attempts) read with their payment's scope: what an incident's
diagnosis weighs, the console's hours of traffic and an incident's affected payments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.payment import AttemptStatus
from paymend.store.prepared import Prepared
from paymend.store.tables import attempts, payments


class Call(NamedTuple):
    """A provider call (attempt) with its payment's scope (`calls_between`)."""

    payment_id: str
    provider: str
    status: str
    unified_code: str | None
    latency_ms: int | None
    created_at: datetime
    method: str
    bank: str | None
    region: str | None


# read at every refresh of a young incident's diagnosis (minutes of calls at full
# traffic): on the driver's cursor, a row a plain tuple (store/prepared.py)
_CALLS_BETWEEN = Prepared(
    sa.select(
        attempts.c.payment_id,
        attempts.c.provider,
        attempts.c.status,
        attempts.c.unified_code,
        attempts.c.latency_ms,
        attempts.c.created_at,
        payments.c.method,
        payments.c.bank,
        payments.c.region,
    )
    .join(payments, payments.c.id == attempts.c.payment_id)
    .where(
        attempts.c.created_at >= sa.bindparam("b_since", type_=attempts.c.created_at.type),
        attempts.c.created_at < sa.bindparam("b_until", type_=attempts.c.created_at.type),
    )
)


def calls_between(conn: Connection, since: datetime, until: datetime) -> list[Call]:
    """Every provider call (attempt) made in [since, until), with its payment's scope:
    what incident diagnosis and affected counts are computed from."""
    make = Call._make
    return [make(r) for r in _CALLS_BETWEEN.all(conn, {"b_since": since, "b_until": until})]


def failed_calls_in(
    conn: Connection,
    channel: str,
    scope: dict[str, str],
    since: datetime,
    until: datetime | None,
    limit: int,
) -> list[sa.Row[Any]]:
    """The calls in a scope (a channel, or `*` for any, and the payment's method, bank or
    region) made in [since, until) that did not succeed, newest first, each with its
    payment's order, amount and status: an incident's affected payments (console)."""
    p, a = payments.c, attempts.c
    where = [a.created_at >= since, a.status != AttemptStatus.SUCCEEDED.value]
    if until is not None:
        where.append(a.created_at < until)
    if channel != "*":
        where.append(a.provider == channel)
    for dimension in ("method", "bank", "region"):
        if dimension in scope:
            where.append(p[dimension] == scope[dimension])
    query = (
        sa.select(
            a.payment_id,
            a.provider,
            a.status,
            a.raw_code,
            a.unified_code,
            a.created_at,
            p.order_id,
            p.amount,
            p.currency,
            p.status.label("payment_status"),
        )
        .join(payments, p.id == a.payment_id)
        .where(*where)
        .order_by(a.created_at.desc())
        .limit(limit)
    )
    return list(conn.execute(query))
