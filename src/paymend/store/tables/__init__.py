"""The schema, one module per area. Alembic migrations in `store/migrations` must match
it (a test checks). The rest of paymend asks a repository instead (tests/test_layers.py
lists what does not yet)."""

from paymend.store.tables.access import (
    login_failures,
    merchant_keys,
    merchants,
    operator_keys,
    operator_sessions,
    operators,
)
from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata, one_of
from paymend.store.tables.feedback import feedback
from paymend.store.tables.money import (
    ORDER_HOLDING,
    attempts,
    compensations,
    events,
    idempotency_keys,
    payments,
    refunds,
)
from paymend.store.tables.notices import customer_notice_prefs, notice_attempts, notice_intents
from paymend.store.tables.ops import audit_log, controls, incident_events, incidents
from paymend.store.tables.ops_alerts import (
    ops_alert_attempts,
    ops_alerts,
    ops_events,
    ops_pages,
    ops_silences,
)
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
    "customer_notice_prefs",
    "events",
    "feedback",
    "idempotency_keys",
    "incident_events",
    "incidents",
    "instances",
    "jobs",
    "login_failures",
    "merchant_keys",
    "merchants",
    "metadata",
    "notice_attempts",
    "notice_intents",
    "one_of",
    "operator_keys",
    "operator_sessions",
    "operators",
    "ops_alert_attempts",
    "ops_alerts",
    "ops_events",
    "ops_pages",
    "ops_silences",
    "payments",
    "refunds",
    "risk_decisions",
    "risk_lists",
    "risk_reports",
    "webhook_attempts",
    "webhook_deliveries",
]
