"""Everything a finished run's database holds that its figures need, read in a few queries
before a throwaway database is removed (the lab): payments' final statuses, attempts in
order, playbook starts and recoveries from the audit log, incidents with diagnoses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from paymend.store.database import Connection
from paymend.store.tables import attempts, audit_log, incidents, payments, risk_decisions


def payment_outcomes(conn: Connection) -> Iterable[Any]:
    """Rows of (id, status, failure_code)."""
    return conn.execute(sa.select(payments.c.id, payments.c.status, payments.c.failure_code))


def attempt_timeline(conn: Connection) -> Iterable[Any]:
    """Rows of (payment_id, seq, provider, status, unified_code, decision, reason,
    created_at), by payment, in order."""
    columns = (
        attempts.c.payment_id,
        attempts.c.seq,
        attempts.c.provider,
        attempts.c.status,
        attempts.c.unified_code,
        attempts.c.decision,
        attempts.c.reason,
        attempts.c.created_at,
    )
    return conn.execute(sa.select(*columns).order_by(attempts.c.payment_id, attempts.c.seq))


def audit_of(conn: Connection, actions: Iterable[str]) -> Iterable[Any]:
    """Audit rows (at, action, target, …) of the given actions."""
    return conn.execute(sa.select(audit_log).where(audit_log.c.action.in_(tuple(actions))))


def all_incidents(conn: Connection) -> Iterable[Any]:
    """Incident rows (opened_at, scope, diagnosis, …)."""
    return conn.execute(sa.select(incidents))


def risk_verdicts(conn: Connection) -> Iterable[Any]:
    """Rows of (payment_id, verdict): every payment's risk decision."""
    return conn.execute(sa.select(risk_decisions.c.payment_id, risk_decisions.c.verdict))
