"""Routing controls set by operators and playbooks, and the audit log of every action.

Two active controls never do the same thing: the database keeps one active control per
signature (kind, scope, value, method, currency, threshold), so two operators, or an
operator and a playbook, setting the same pause at once make one control.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from typing_extensions import TypedDict

from paymend.domain.control import Control, ControlKind, ControlScope
from paymend.domain.errors import ControlExists, NotFound
from paymend.store.tables import attempts, audit_log, controls, payments


def add(conn: Connection, c: Control) -> None:
    """Insert an active control; ControlExists if an identical one is active, also when
    another transaction inserted it a moment ago (the unique index decides)."""
    found = active_like(conn, c.signature)
    if found is not None:
        raise ControlExists(found)
    try:
        with conn.begin_nested():  # a savepoint: the transaction survives a refused insert
            conn.execute(
                controls.insert(),
                {
                    "id": c.id,
                    "kind": c.kind.value,
                    "scope": c.scope.value,
                    "value": c.value,
                    "method": c.method,
                    "reason": c.reason,
                    "set_by": c.set_by,
                    "created_at": c.created_at,
                    "amount_above": c.amount_above,
                    "currency": c.currency,
                    "ends_at": c.ends_at,
                    "signature": c.signature,
                },
            )
    except sa.exc.IntegrityError:
        raise ControlExists(active_like(conn, c.signature)) from None


def active_like(conn: Connection, signature: str) -> Control | None:
    row = conn.execute(
        sa.select(controls).where(controls.c.signature == signature, controls.c.ended_at.is_(None))
    ).first()
    return _control(row) if row else None


def end(conn: Connection, control_id: str, by: str, now: datetime) -> Control:
    row = conn.execute(sa.select(controls).where(controls.c.id == control_id)).first()
    if row is None or row.ended_at is not None:
        raise NotFound("control_not_found", f"no active control '{control_id}'", param="id")
    conn.execute(
        controls.update().where(controls.c.id == control_id).values(ended_at=now, ended_by=by)
    )
    return _control(row)


def active(conn: Connection, now: datetime | None = None) -> list[Control]:
    """The controls not ended; at `now`, without those past their end time (which
    `lift` has not ended yet)."""
    rows = conn.execute(
        sa.select(controls).where(controls.c.ended_at.is_(None)).order_by(controls.c.created_at)
    )
    found = [_control(r) for r in rows]
    return found if now is None else [c for c in found if c.lasts_at(now)]


def lift(conn: Connection, now: datetime) -> list[Control]:
    """End the controls whose end time has come, at that time, each audit-logged once
    (`control.<kind>.expire` by `clock`): of two processes lifting at once, each ends
    and logs only the rows it updated."""
    rows = conn.execute(
        sa.select(controls).where(controls.c.ended_at.is_(None), controls.c.ends_at <= now)
    ).all()
    lifted = []
    for r in rows:
        done = conn.execute(
            controls.update()
            .where(controls.c.id == r.id, controls.c.ended_at.is_(None))
            .values(ended_at=r.ends_at, ended_by=LIFTER)
        )
        if done.rowcount == 1:
            c = _control(r)
            details = {"id": c.id, "ends_at": r.ends_at.isoformat()}
            audit(
                conn,
                now,
                LIFTER,
                f"control.{c.kind}.expire",
                f"{c.scope}:{c.value}",
                c.reason,
                details,
            )
            lifted.append(c)
    return lifted


LIFTER = "clock"  # the actor that ends a control at its end time


def audit(
    conn: Connection,
    now: datetime,
    actor: str,
    action: str,
    target: str | None,
    reason: str | None,
    details: dict[str, Any],
) -> None:
    conn.execute(
        audit_log.insert(),
        {
            "at": now,
            "actor": actor,
            "action": action,
            "target": target,
            "reason": reason,
            "details": details,
        },
    )


class AuditEntry(TypedDict):
    """Who did what, when and why: an operator (`operator:<name>`), a playbook
    (`playbook:<name>`), the circuit breakers (`breaker`) or the command line
    (`cli:<user>`); `details` holds what the action changed or read."""

    at: str
    actor: str
    action: str  # control.pause, incident.review, payment.lookup, …
    target: str | None
    reason: str | None
    details: dict[str, Any]


def audit_entries(
    conn: Connection, limit: int = 100, target: str | None = None
) -> list[AuditEntry]:
    """The newest entries, or (`target`) the newest about one thing, e.g. `payment:pay_…`."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    rows = conn.execute(query)
    return [
        {
            "at": r.at.isoformat(),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "reason": r.reason,
            "details": dict(r.details),
        }
        for r in rows
    ]


def _control(r: sa.Row[Any]) -> Control:
    return Control(
        r.id,
        ControlKind(r.kind),
        ControlScope(r.scope),
        r.value,
        r.method,
        r.reason,
        r.set_by,
        r.created_at,
        r.ended_at,
        r.ended_by,
        r.amount_above,
        r.currency,
        r.ends_at,
    )


def touched(conn: Connection, c: Control, since: datetime) -> int:
    """How many payments created since `since` `c` would have touched: a pause of a
    channel, those that called it; of a bank or region, those of it; a forced route, those
    of its method that never called the channel; a hold, those of its bank or region and
    currency above its amount. Read by the preview an operator sees before setting it."""
    p = payments.c
    where: list[sa.ColumnElement[bool]] = [p.created_at >= since]
    if c.method is not None:
        where.append(p.method == c.method)
    called = sa.exists().where(attempts.c.payment_id == p.id, attempts.c.provider == c.value)
    if c.kind is ControlKind.FORCE_ROUTE:
        where.append(~called)
    elif c.scope is ControlScope.CHANNEL:
        where.append(called)
    else:
        where.append((p.bank if c.scope is ControlScope.BANK else p.region) == c.value)
    if c.kind is ControlKind.HOLD:
        where.append(p.amount > (c.amount_above or 0))
        if c.currency is not None:
            where.append(p.currency == c.currency)
    query = sa.select(sa.func.count()).select_from(payments).where(*where)
    return int(conn.execute(query).scalar_one())
