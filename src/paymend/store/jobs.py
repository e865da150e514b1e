"""Durable jobs: work the worker owes, enqueued in the transaction that makes it needed.

Workers claim due jobs under a lease. On PostgreSQL the claim uses `FOR UPDATE SKIP
LOCKED`, so many workers share the queue without waiting on each other; on SQLite the
writer lock (`BEGIN IMMEDIATE`) makes the claim exclusive. A claim names its owner
instance: when the owner is known dead (engine/liveness.py) its jobs are free at once;
a stuck owner loses them when the lease runs out. A worker stopping cleanly releases
what it holds. Every handler is idempotent.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.instances import live_owner_since
from paymend.store.tables import jobs

_INSERT = jobs.insert()


class JobKind(StrEnum):
    SETTLE_ATTEMPT = "settle_attempt"  # ask the provider about an unknown outcome
    RUN_ATTEMPT = "run_attempt"  # call a provider for an attempt decided after the deadline
    RESEND_REFUND = "resend_refund"  # a refund the provider could not take yet
    DELIVER_WEBHOOK = "deliver_webhook"  # an event to the merchant's endpoint
    SEND_NOTICE = "send_notice"  # a customer notice (store/notices.py), after its hold
    SEND_OPS_ALERT = "send_ops_alert"  # one page to one on-call route (store/ops_alerts.py)
    START_PAYMENT = "start_payment"  # a payment waiting out a pause (engine/waiting.py)


class JobStatus(StrEnum):
    PENDING = "pending"  # due at run_at, or leased by a worker running it
    DONE = "done"
    DEAD = "dead"  # given up: stays visible to ops


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: JobKind
    subject_id: str
    run_at: datetime
    tries: int


def enqueue(
    conn: Connection, job_id: str, kind: JobKind, subject_id: str, run_at: datetime, now: datetime
) -> None:
    enqueue_many(conn, kind, [(job_id, subject_id)], run_at, now)


def enqueue_many(
    conn: Connection,
    kind: JobKind,
    jobs_: list[tuple[str, str]],
    run_at: datetime,
    now: datetime,
) -> None:
    """Jobs of one kind, (id, subject id) each, due at `run_at`, in one executemany."""
    if not jobs_:
        return
    conn.execute(
        _INSERT,
        [
            {
                "id": job_id,
                "kind": kind.value,
                "subject_id": subject_id,
                "status": JobStatus.PENDING.value,
                "run_at": run_at,
                "tries": 0,
                "created_at": now,
                "updated_at": now,
            }
            for job_id, subject_id in jobs_
        ],
    )


def claim(
    conn: Connection,
    now: datetime,
    lease: timedelta,
    limit: int,
    *,
    owner: str | None = None,
    dead_after: timedelta | None = None,
    kinds: Sequence[JobKind] | None = None,
) -> list[Job]:
    """Take up to `limit` due jobs (of `kinds` only, if given) for `lease`; nobody else
    gets them meanwhile. A job leased by an owner that is not alive (given `dead_after`)
    is taken at once, unless that owner is the claimer itself: a process whose heartbeat
    only looks stale (its loop stalled) is alive, and may still be running that job."""
    params: dict[str, Any] = {"b_now": now, "b_limit": limit}
    if dead_after is not None:
        params["b_alive_since"] = now - dead_after
        params["b_claimer"] = owner or ""  # "" is no instance's id
    if kinds is not None:
        params["b_kinds"] = [k.value for k in kinds]
    rows = conn.execute(_claimable(dead_after is not None, kinds is not None), params).all()
    if rows:
        conn.execute(
            _LEASE,
            {
                "b_ids": [r.id for r in rows],
                "b_lease_until": now + lease,
                "b_owner": owner,
                "b_now": now,
            },
        )
    return [Job(r.id, JobKind(r.kind), r.subject_id, r.run_at, r.tries + 1) for r in rows]


_AT = jobs.c.run_at.type  # the type every time parameter is bound with


@functools.cache
def _claimable(orphans: bool, of_kinds: bool) -> sa.Select[Any]:
    """The claim's query, built once for each shape (the worker claims every sweep):
    `orphans`, jobs of dead owners are free too; `of_kinds`, of the kinds `b_kinds`."""
    now = sa.bindparam("b_now", type_=_AT)
    free: sa.ColumnElement[bool] = sa.or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < now)
    if orphans:
        alive = live_owner_since(jobs.c.owner, sa.bindparam("b_alive_since", type_=_AT))
        claimer = sa.bindparam("b_claimer", type_=jobs.c.owner.type)
        free = sa.or_(free, sa.and_(jobs.c.owner.is_not(None), jobs.c.owner != claimer, ~alive))
    if of_kinds:
        free = sa.and_(free, jobs.c.kind.in_(sa.bindparam("b_kinds", expanding=True)))
    return (
        sa.select(jobs.c.id, jobs.c.kind, jobs.c.subject_id, jobs.c.run_at, jobs.c.tries)
        .where(jobs.c.status == JobStatus.PENDING.value, jobs.c.run_at <= now, free)
        .order_by(jobs.c.run_at)
        .limit(sa.bindparam("b_limit", type_=sa.Integer))
        .with_for_update(skip_locked=True, of=jobs)
    )


_LEASE = (
    jobs.update()
    .where(jobs.c.id.in_(sa.bindparam("b_ids", expanding=True)))
    .values(
        lease_until=sa.bindparam("b_lease_until", type_=_AT),
        owner=sa.bindparam("b_owner", type_=jobs.c.owner.type),
        tries=jobs.c.tries + 1,
        updated_at=sa.bindparam("b_now", type_=_AT),
    )
)


def done(conn: Connection, job_id: str, now: datetime) -> None:
    conn.execute(
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(status=JobStatus.DONE.value, lease_until=None, owner=None, updated_at=now)
    )


def retry(conn: Connection, job_id: str, run_at: datetime, error: str, now: datetime) -> None:
    conn.execute(
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(run_at=run_at, lease_until=None, owner=None, last_error=error[:500], updated_at=now)
    )


def bury(conn: Connection, job_id: str, error: str, now: datetime) -> None:
    """Give up on a job: it stays visible to ops as `dead`."""
    conn.execute(
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(
            status=JobStatus.DEAD.value,
            lease_until=None,
            owner=None,
            last_error=error[:500],
            updated_at=now,
        )
    )


def wake(conn: Connection, kind: JobKind, now: datetime) -> int:
    """Make every pending job of `kind` not leased due now (a pause ended: the payments
    waiting for it look again at once instead of at their next scheduled look), the
    oldest first: due since it was made, the one with the least time left leads."""
    result = conn.execute(
        jobs.update()
        .where(
            jobs.c.kind == kind.value,
            jobs.c.status == JobStatus.PENDING.value,
            jobs.c.run_at > now,
            jobs.c.lease_until.is_(None),
        )
        .values(run_at=jobs.c.created_at, updated_at=now)
    )
    return int(result.rowcount)


def release(conn: Connection, owner: str, now: datetime) -> int:
    """Give back every job `owner` holds (a clean stop): another worker takes them at once."""
    result = conn.execute(
        jobs.update()
        .where(jobs.c.owner == owner, jobs.c.status == JobStatus.PENDING.value)
        .values(lease_until=None, owner=None, updated_at=now)
    )
    return int(result.rowcount)


def pending(conn: Connection, subject_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(jobs).where(jobs.c.status == JobStatus.PENDING.value).order_by(jobs.c.run_at)
    if subject_id is not None:
        query = query.where(jobs.c.subject_id == subject_id)
    return [dict(r._mapping) for r in conn.execute(query)]
