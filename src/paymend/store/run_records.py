"""Everything a finished run's database holds that its figures need, read in a few queries
before a throwaway database is removed (the lab): payments' final statuses, attempts in
order, playbook starts and recoveries from the audit log, incidents with diagnoses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from paymend.domain.payment import AttemptStatus, PaymentStatus
from paymend.store.database import Connection
from paymend.store.jobs import JobStatus
from paymend.store.tables import attempts, audit_log, incidents, jobs, payments, risk_decisions

_OPEN_PAYMENTS = (
    PaymentStatus.CREATED,
    PaymentStatus.PROCESSING,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.HELD,
)
_OPEN_ATTEMPTS = (AttemptStatus.PENDING, AttemptStatus.UNKNOWN, AttemptStatus.REQUIRES_ACTION)


def unsettled(conn: Connection) -> bool:
    """Whether anything is still owed: a job not done (also one due later), an attempt
    whose outcome is open, a payment not yet at an end."""
    checks = (
        sa.select(jobs.c.id).where(jobs.c.status == JobStatus.PENDING.value),
        sa.select(attempts.c.id).where(attempts.c.status.in_([s.value for s in _OPEN_ATTEMPTS])),
        sa.select(payments.c.id).where(payments.c.status.in_([s.value for s in _OPEN_PAYMENTS])),
    )
    return any(conn.execute(check.limit(1)).first() is not None for check in checks)


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
