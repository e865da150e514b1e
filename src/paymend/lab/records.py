"""What a lab run's database held, read into memory before the database is removed: the
payments' final statuses, each attempt with its decision and reason, the playbooks'
starts and recoveries, and the incidents with their diagnoses."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from paymend.store import run_records
from paymend.store.database import Connection


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
    for r in run_records.payment_outcomes(conn):
        found.payments[r.id] = PaymentRecord(r.status, r.failure_code)
    tried: dict[str, list[AttemptRecord]] = defaultdict(list)
    for t in run_records.attempt_timeline(conn):
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
    for r in run_records.audit_of(conn, PLAYBOOK_ACTIONS):
        found.playbooks.append(AuditRecord(r.at.timestamp() - epoch_s, r.action, r.target))
    for r in run_records.all_incidents(conn):
        found.incidents.append(
            IncidentRecord(
                r.opened_at.timestamp() - epoch_s, dict(r.scope), list(r.diagnosis or [])
            )
        )
    return found
