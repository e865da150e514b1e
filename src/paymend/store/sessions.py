"""Console sessions: one row per log-in, keyed by the SHA-256 hash of the random token
the browser's cookie holds (the token itself is never stored, as with API keys)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.operators import Operator, _operator
from paymend.store.tables import login_failures, operator_sessions, operators

# last_seen_at is written at most this often: a page's polls do not each write a row
SEEN_GRANULARITY = timedelta(seconds=30)


def start(
    conn: Connection, digest: str, operator_id: str, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        operator_sessions.insert().values(
            id=digest,
            operator_id=operator_id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )


def find(
    conn: Connection, digest: str, now: datetime, idle: timedelta
) -> tuple[Operator, datetime] | None:
    """The operator of a working session (not ended, not past its end, not idle longer
    than `idle`) and when it started; marks it seen."""
    s = operator_sessions.c
    row = conn.execute(
        sa.select(operators, s.last_seen_at, s.created_at.label("session_started"))
        .join(operator_sessions, s.operator_id == operators.c.id)
        .where(
            s.id == digest,
            s.ended_at.is_(None),
            s.expires_at > now,
            s.last_seen_at > now - idle,
        )
    ).first()
    if row is None:
        return None
    if now - row.last_seen_at >= SEEN_GRANULARITY:
        conn.execute(operator_sessions.update().where(s.id == digest).values(last_seen_at=now))
    return _operator(row), row.session_started


def end(conn: Connection, digest: str, now: datetime) -> bool:
    """End one session (logout); False when it had already ended."""
    s = operator_sessions.c
    done = conn.execute(
        operator_sessions.update().where(s.id == digest, s.ended_at.is_(None)).values(ended_at=now)
    )
    return done.rowcount > 0


def end_all(conn: Connection, operator_id: str, now: datetime) -> int:
    """End every session of an operator (their password changed)."""
    s = operator_sessions.c
    done = conn.execute(
        operator_sessions.update()
        .where(s.operator_id == operator_id, s.ended_at.is_(None))
        .values(ended_at=now)
    )
    return done.rowcount


def note_failure(conn: Connection, name: str, ip: str, now: datetime, since: datetime) -> None:
    """Record a failed log-in; this name's and address's failures before `since` (outside
    any window read) go, so the table holds only what is counted."""
    f = login_failures.c
    old = sa.or_(f.name == name[:64], f.ip == ip[:64])
    conn.execute(login_failures.delete().where(old, f.at < since))
    conn.execute(login_failures.insert(), {"at": now, "name": name[:64], "ip": ip[:64]})


def failures_since(conn: Connection, name: str, ip: str, since: datetime) -> tuple[int, int]:
    """Failed log-ins since `since`: of this name, and from this address."""
    f = login_failures.c

    def count(where: sa.ColumnElement[bool]) -> int:
        query = sa.select(sa.func.count()).select_from(login_failures).where(where)
        return int(conn.execute(query.where(f.at >= since)).scalar_one())

    return count(f.name == name[:64]), count(f.ip == ip[:64])
