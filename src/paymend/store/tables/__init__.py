"""The schema, one module per area. Alembic migrations in `store/migrations` must match
it (a test checks). The rest of paymend asks a repository instead (tests/test_layers.py
lists what does not yet)."""

from paymend.store.tables.access import merchant_keys, merchants, operator_keys, operators
from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata
from paymend.store.tables.money import (
    ORDER_HOLDING,
    attempts,
    compensations,
    events,
    idempotency_keys,
    payments,
    refunds,
)
from paymend.store.tables.notices import notice_attempts, notice_intents
from paymend.store.tables.ops import audit_log, controls, incident_events, incidents
from paymend.store.tables.risk import risk_decisions, risk_lists, risk_reports
from paymend.store.tables.work import instances, jobs, webhook_attempts, webhook_deliveries

__all__ = [
    "JSON",
    "ORDER_HOLDING",
    "Id",
    "UTCDateTime",
    "attempts",
    "audit_log",
    "compensations",
    "controls",
    "events",
    "idempotency_keys",
    "incident_events",
    "incidents",
    "instances",
    "jobs",
    "merchant_keys",
    "merchants",
    "metadata",
    "notice_attempts",
    "notice_intents",
    "operator_keys",
    "operators",
    "payments",
    "refunds",
    "risk_decisions",
    "risk_lists",
    "risk_reports",
    "webhook_attempts",
    "webhook_deliveries",
]
