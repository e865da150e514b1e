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
from paymend.store.tables import audit_log, controls


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


def active(conn: Connection) -> list[Control]:
    rows = conn.execute(
        sa.select(controls).where(controls.c.ended_at.is_(None)).order_by(controls.c.created_at)
    )
    return [_control(r) for r in rows]


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
    )
