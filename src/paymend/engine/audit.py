"""Operator and automatic actions with their audit entry: one transaction, then a log
line, so the audit log can never miss a change nor record one that did not happen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from paymend.observability import get_logger
from paymend.store import controls as audit_repo
from paymend.store.database import Connection, Store

log = get_logger("paymend.audit")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Audited(Generic[T]):
    """What a change made, and how the audit log names it."""

    result: T
    action: str  # e.g. control.pause, incident.review, payment.release
    target: str  # e.g. bank:CMB, incident:inc_..., payment:pay_...
    details: dict[str, Any]


async def audited(
    store: Store,
    now: datetime,
    actor: str,
    reason: str | None,
    change: Callable[[Connection], Audited[T]],
) -> T:
    def write(conn: Connection) -> Audited[T]:
        done = change(conn)
        audit_repo.audit(conn, now, actor, done.action, done.target, reason, done.details)
        return done

    done = await store.run(write)
    log.info("audit", action=done.action, who=actor, target=done.target, why=reason)
    return done.result
