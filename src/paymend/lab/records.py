"""What a lab run's database held, read into memory before the database is removed: the
payments' final statuses, each attempt with its decision and reason, the playbooks'
starts and recoveries, and the incidents with their diagnoses."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.store.tables import attempts, audit_log, incidents, payments


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    status: str
    failure_code: str | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    seq: int
    provider: str
    status: str
    unified_code: str | None
    decision: str | None
    reason: str | None
    at: float  # created, seconds into the scenario


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: float
    action: str
    target: str | None


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    at: float
    scope: dict[str, str]
    diagnosis: list[dict[str, Any]]


@dataclass(slots=True)
class Records:
    payments: dict[str, PaymentRecord] = field(default_factory=dict)
    attempts: dict[str, list[AttemptRecord]] = field(default_factory=dict)  # by payment
    playbooks: list[AuditRecord] = field(default_factory=list)
    incidents: list[IncidentRecord] = field(default_factory=list)

    def all_attempts(self) -> list[tuple[str, AttemptRecord]]:
        return [(pid, a) for pid, tried in self.attempts.items() for a in tried]


PLAYBOOK_ACTIONS = ("playbook.start", "playbook.recover")


def read_records(conn: Connection, epoch_s: float) -> Records:
    """Everything the figures need; times as seconds since the simulated clock's start."""
    found = Records()
    for r in conn.execute(sa.select(payments.c.id, payments.c.status, payments.c.failure_code)):
        found.payments[r.id] = PaymentRecord(r.status, r.failure_code)
    tried: dict[str, list[AttemptRecord]] = defaultdict(list)
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
    query = sa.select(*columns).order_by(attempts.c.payment_id, attempts.c.seq)
    for t in conn.execute(query):
        tried[t.payment_id].append(
            AttemptRecord(
                t.seq,
                t.provider,
                t.status,
                t.unified_code,
                t.decision,
                t.reason,
                t.created_at.timestamp() - epoch_s,
            )
        )
    found.attempts = dict(tried)
    audit = sa.select(audit_log).where(audit_log.c.action.in_(PLAYBOOK_ACTIONS))
    for r in conn.execute(audit):
        found.playbooks.append(AuditRecord(r.at.timestamp() - epoch_s, r.action, r.target))
    for r in conn.execute(sa.select(incidents)):
        found.incidents.append(
            IncidentRecord(
                r.opened_at.timestamp() - epoch_s, dict(r.scope), list(r.diagnosis or [])
            )
        )
    return found
