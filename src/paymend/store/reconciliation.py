"""What reconciliation reads: the store's side of each provider's settlement report, and
the payments stuck in processing."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.payment import AttemptStatus, PaymentStatus, RefundStatus
from paymend.store.tables import attempts, payments, refunds


@dataclass(frozen=True, slots=True)
class Recorded:
    """An attempt as the store recorded it, with its payment's amount."""

    attempt_id: str
    payment_id: str
    status: AttemptStatus
    reference: str | None
    amount: int


def by_idempotency_key(conn: Connection, keys: Collection[str]) -> dict[str, Recorded]:
    """The attempts sent under these idempotency keys, by key."""
    if not keys:
        return {}
    rows = conn.execute(
        sa.select(
            attempts.c.idempotency_key,
            attempts.c.id,
            attempts.c.payment_id,
            attempts.c.status,
            attempts.c.provider_reference,
            payments.c.amount,
        )
        .join(payments, payments.c.id == attempts.c.payment_id)
        .where(attempts.c.idempotency_key.in_(list(keys)))
    ).all()  # every charge of a settlement report: the rows at once, unpacked
    return {
        key: Recorded(attempt_id, payment_id, AttemptStatus(status), reference, amount)
        for key, attempt_id, payment_id, status, reference, amount in rows
    }


def succeeded(
    conn: Connection, provider: str, between: tuple[datetime, datetime] | None = None
) -> list[Recorded]:
    """Every attempt the store counts as charged on `provider` (made within `between`,
    [start, end), when given)."""
    query = (
        sa.select(
            attempts.c.id, attempts.c.payment_id, attempts.c.provider_reference, payments.c.amount
        )
        .join(payments, payments.c.id == attempts.c.payment_id)
        .where(attempts.c.provider == provider, attempts.c.status == AttemptStatus.SUCCEEDED.value)
    )
    if between is not None:
        start, end = between
        query = query.where(attempts.c.created_at >= start, attempts.c.created_at < end)
    succeeded = AttemptStatus.SUCCEEDED
    return [
        Recorded(attempt_id, payment_id, succeeded, reference, amount)
        for attempt_id, payment_id, reference, amount in conn.execute(query).all()
    ]


def refunded_by_attempt(conn: Connection) -> dict[str, int]:
    """Succeeded refunds, summed per charged attempt."""
    rows = conn.execute(
        sa.select(refunds.c.attempt_id, sa.func.sum(refunds.c.amount).label("total"))
        .where(refunds.c.status == RefundStatus.SUCCEEDED.value)
        .group_by(refunds.c.attempt_id)
    )
    return {r.attempt_id: int(r.total) for r in rows}


def stuck(conn: Connection, unchanged_since: datetime) -> list[tuple[str, str]]:
    """(payment, attempt) of payments processing and unchanged since `unchanged_since`
    whose attempt is still unknown or pending."""
    rows = conn.execute(
        sa.select(payments.c.id, attempts.c.id.label("attempt_id"))
        .join(attempts, attempts.c.payment_id == payments.c.id)
        .where(
            payments.c.status == PaymentStatus.PROCESSING.value,
            payments.c.updated_at <= unchanged_since,
            attempts.c.status.in_([AttemptStatus.UNKNOWN.value, AttemptStatus.PENDING.value]),
        )
    ).all()
    return [(r.id, r.attempt_id) for r in rows]
