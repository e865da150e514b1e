"""Running paymend processes (instances): registered at start, beating while alive,
marked stopped on a clean stop or when another process finds them dead.

Pending attempts, claimed jobs and idempotency claims name their owner instance; a row
whose owner is not a live instance is free to be taken over (see `live_owner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.tables import instances


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    role: str
    hostname: str
    boot_id: str | None
    pid_namespace: str | None
    pid: int
    pid_started: int | None
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None = None
    stop_reason: str | None = None


def register(conn: Connection, instance: Instance) -> None:
    conn.execute(instances.insert().values(**_values(instance)))


def beat(conn: Connection, instance_id: str, now: datetime) -> bool:
    """Record that `instance_id` is alive. False when someone had marked it stopped (a
    stall long enough to be taken for dead): it is alive again from now on."""
    row = conn.execute(
        sa.select(instances.c.stopped_at).where(instances.c.id == instance_id)
    ).first()
    conn.execute(
        instances.update()
        .where(instances.c.id == instance_id)
        .values(heartbeat_at=now, stopped_at=None, stop_reason=None)
    )
    return row is not None and row.stopped_at is None


def mark_stopped(conn: Connection, instance_id: str, now: datetime, reason: str) -> bool:
    """Mark an instance stopped; False when it already was (someone else got there)."""
    result = conn.execute(
        instances.update()
        .where(instances.c.id == instance_id, instances.c.stopped_at.is_(None))
        .values(stopped_at=now, stop_reason=reason)
    )
    return result.rowcount == 1


def get(conn: Connection, instance_id: str) -> Instance | None:
    row = conn.execute(sa.select(instances).where(instances.c.id == instance_id)).first()
    return _instance(row) if row else None


def running(conn: Connection, *, excluding: str | None = None) -> list[Instance]:
    """Instances not marked stopped (some may be dead and not found out yet)."""
    query = sa.select(instances).where(instances.c.stopped_at.is_(None))
    if excluding is not None:
        query = query.where(instances.c.id != excluding)
    return [_instance(r) for r in conn.execute(query.order_by(instances.c.started_at))]


def prune(conn: Connection, stopped_before: datetime) -> int:
    """Forget instances stopped long ago; an owner no longer listed counts as dead."""
    result = conn.execute(
        instances.delete().where(
            instances.c.stopped_at.is_not(None), instances.c.stopped_at < stopped_before
        )
    )
    return int(result.rowcount)


def live_owner(owner: sa.ColumnElement[Any], now: datetime, dead_after: timedelta) -> Any:
    """SQL: `owner` is an instance that is running and beat within `dead_after`. Its
    negation is what makes an owned row free for others."""
    return live_owner_since(owner, now - dead_after)


def live_owner_since(owner: sa.ColumnElement[Any], since: Any) -> Any:
    """SQL: `owner` is an instance that is running and beat at or after `since` (a time,
    or a bound parameter in a statement built once)."""
    return sa.exists().where(
        instances.c.id == owner,
        instances.c.stopped_at.is_(None),
        instances.c.heartbeat_at >= since,
    )


def _values(i: Instance) -> dict[str, Any]:
    return {
        "id": i.id,
        "role": i.role,
        "hostname": i.hostname[:255],
        "boot_id": i.boot_id,
        "pid_namespace": i.pid_namespace,
        "pid": i.pid,
        "pid_started": i.pid_started,
        "started_at": i.started_at,
        "heartbeat_at": i.heartbeat_at,
        "stopped_at": i.stopped_at,
        "stop_reason": i.stop_reason,
    }


def _instance(row: sa.Row[Any]) -> Instance:
    return Instance(
        id=row.id,
        role=row.role,
        hostname=row.hostname,
        boot_id=row.boot_id,
        pid_namespace=row.pid_namespace,
        pid=row.pid,
        pid_started=row.pid_started,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        stopped_at=row.stopped_at,
        stop_reason=row.stop_reason,
    )
