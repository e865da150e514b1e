"""Customers' feedback: stored as given (the engine masks it first), read back for the
pain-point report by time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.tables import feedback


def insert(conn: Connection, row: dict[str, Any]) -> None:
    """One piece of feedback (the row's keys are the table's columns)."""
    conn.execute(feedback.insert(), row)


def since(
    conn: Connection, start: datetime, end: datetime, limit: int = 100_000
) -> list[dict[str, Any]]:
    """Feedback given from `start` to `end`, both included, newest first."""
    rows = conn.execute(
        sa.select(feedback)
        .where(feedback.c.created_at >= start, feedback.c.created_at <= end)
        .order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]
