"""The schema. Alembic migrations in `store/migrations` must match it (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from paymend.domain.payment import ORDER_IN_FLIGHT, ORDER_PAID

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSON: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.String(40)

# a payment in one of these statuses holds its order (domain/payment.py)
ORDER_HOLDING = tuple(sorted(s.value for s in ORDER_IN_FLIGHT | ORDER_PAID))
_HOLDING_SQL = ", ".join(f"'{s}'" for s in ORDER_HOLDING)

merchants = sa.Table(
    "merchants",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("settings", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "name", unique=True),  # the CLI and the ops API name merchants by it
)


def _key_table(name: str, owner: str) -> sa.Table:
    """API keys of merchants or operators: several per owner (rotation overlaps them),
    stored as SHA-256 hashes; a key works while it is neither revoked nor expired."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", Id, primary_key=True),
        sa.Column(f"{owner}_id", Id, sa.ForeignKey(f"{owner}s.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),  # sk_…abcd: tells keys apart
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime()),  # set by a rotation's overlap, or at creation
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("last_used_at", UTCDateTime()),  # to the minute: written at most that often
        sa.Index(None, f"{owner}_id"),
    )


merchant_keys = _key_table("merchant_keys", "merchant")

operators = sa.Table(
    "operators",
    metadata,
    # the people of the ops API; the audit log names them as operator:<name>
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | support | ops | admin
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

operator_keys = _key_table("operator_keys", "operator")

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("bank", sa.String(64)),
    sa.Column("region", sa.String(64)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
    sa.Column("amount_refund_pending", sa.BigInteger(), nullable=False),
    # id, locale and the masked email and phone (store/pii.py); never their clear text
    sa.Column("customer", JSON, nullable=False),
    sa.Column("customer_id", sa.String(128)),
    # AES-256-GCM under the data key, with its key id; NULL without a key
    sa.Column("customer_email_sealed", sa.Text()),
    sa.Column("customer_phone_sealed", sa.Text()),
    # HMAC-SHA256 blind indexes of the normalised email and phone: match without decrypting
    sa.Column("customer_email_index", sa.String(64)),
    sa.Column("customer_phone_index", sa.String(64)),
    sa.Column("metadata", JSON, nullable=False),
    sa.Column("payment_token", sa.String(255)),
    sa.Column("failure_code", sa.String(64)),
    sa.Column("failure_message", sa.String(500)),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # one of several payments the merchant asked for on one order (split payment): it
    # takes no part in the order's one-payment rule below
    sa.Column("split", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index(None, "merchant_id", "order_id"),
    # one order, at most one exclusive payment in flight or paid: the database itself
    # refuses a second one, whatever the code does
    sa.Index(
        "uq_payments_one_per_order",
        "merchant_id",
        "order_id",
        unique=True,
        sqlite_where=sa.text(f"NOT split AND status IN ({_HOLDING_SQL})"),
        postgresql_where=sa.text(f"NOT split AND status IN ({_HOLDING_SQL})"),
    ),
    sa.Index(None, "status", "updated_at"),
    sa.Index(None, "merchant_id", "customer_id", "created_at"),
    sa.Index(None, "merchant_id", "created_at", "id"),  # listing, newest first, by pages
    sa.Index(None, "merchant_id", "customer_email_index", "created_at"),
    sa.Index(None, "merchant_id", "customer_phone_index", "created_at"),
    sa.Index(None, "payment_token"),
    sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
    sa.CheckConstraint(
        "amount_refunded >= 0 AND amount_refund_pending >= 0"
        " AND amount_refunded + amount_refund_pending <= amount",
        name="ck_payments_refunds_within_amount",
    ),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("provider_reference", sa.String(128)),
    sa.Column("raw_code", sa.String(128)),
    sa.Column("raw_message", sa.String(500)),
    sa.Column("unified_code", sa.String(64)),
    sa.Column("decision", sa.String(32)),
    sa.Column("reason", sa.String(500)),
    sa.Column("latency_ms", sa.Integer()),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("request", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    # the process instance (instances.id) that calls the provider for a pending attempt:
    # when it is known dead, the worker settles the attempt at once
    sa.Column("owner", Id),
    sa.UniqueConstraint("payment_id", "seq"),
    # never charge twice: the database itself allows one succeeded attempt per payment
    sa.Index(
        "uq_attempts_one_success_per_payment",
        "payment_id",
        unique=True,
        sqlite_where=sa.text("status = 'succeeded'"),
        postgresql_where=sa.text("status = 'succeeded'"),
    ),
    sa.Index(None, "status", "created_at"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("provider_reference", sa.String(128)),
    sa.Column("raw_code", sa.String(128)),
    sa.Column("raw_message", sa.String(500)),
    # merchant: asked for; duplicate: an extra charge paymend sends back on its own
    sa.Column("kind", sa.String(16), nullable=False, server_default="merchant"),
    sa.Column("attempt_id", Id),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "payment_id"),
    sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
)

events = sa.Table(
    "events",
    metadata,
    # seq orders events as they were committed; id is the stable id receivers dedupe on
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("id", Id, nullable=False, unique=True),
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("published_at", UTCDateTime()),
    sa.Index(None, "published_at", "seq"),
    sa.Index(None, "subject_id"),
    sa.Index(None, "merchant_id", "seq"),  # a merchant's events, newest first
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("request_path", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("response_status", sa.Integer()),
    sa.Column("response_body", JSON),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),  # in progress: when claimed
    # who runs the request (instances.id) and the claim's own token: a claim taken over
    # from a dead owner gets a new token, so the old request can no longer link or finish
    sa.Column("owner", Id),
    sa.Column("claim_token", sa.String(40)),
    # what the request created (payment, refund, compensation), linked in the very
    # transaction that created it: a key whose request died answers with it
    sa.Column("resource_kind", sa.String(16)),
    sa.Column("resource_id", Id),
)

instances = sa.Table(
    "instances",
    metadata,
    # every running paymend process: what it owns (pending attempts, jobs, idempotency
    # claims) is taken over as soon as it is known dead
    sa.Column("id", Id, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # serve | api | worker
    sa.Column("hostname", sa.String(255), nullable=False),
    # Linux boot id and pid namespace: equal to ours means its pid can be checked here
    sa.Column("boot_id", sa.String(64)),
    sa.Column("pid_namespace", sa.String(64)),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("pid_started", sa.BigInteger()),  # clock ticks after boot: tells pid reuse
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("stopped_at", UTCDateTime()),  # a clean stop, or found dead by another
    sa.Column("stop_reason", sa.String(32)),
    sa.Index(None, "stopped_at"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    # work the worker owes: enqueued in the transaction of the change that needs it
    sa.Column("id", Id, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | done | dead
    sa.Column("run_at", UTCDateTime(), nullable=False),
    sa.Column("tries", sa.Integer(), nullable=False),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("owner", Id),  # the instance holding the lease; dead: the job is free at once
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "status", "run_at"),
    sa.Index(None, "subject_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("event_id", Id, nullable=False),
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("tries", sa.Integer(), nullable=False),
    sa.Column("last_status_code", sa.Integer()),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime()),
    sa.UniqueConstraint("event_id", "url"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    # every delivery attempt, logged
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("delivery_id", Id, sa.ForeignKey("webhook_deliveries.id"), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer()),
    sa.Column("error", sa.String(500)),
    sa.Column("latency_ms", sa.Integer()),
    sa.Index(None, "delivery_id"),
)

compensations = sa.Table(
    "compensations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # coupon | credit
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("granted_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "payment_id"),
    sa.CheckConstraint("amount > 0", name="ck_compensations_amount_positive"),
)

controls = sa.Table(
    "controls",
    metadata,
    # operator and playbook overrides of routing: pause a channel, a bank or a region
    # (optionally for one method), force a channel for a method, or hold a bank's or
    # region's payments above an amount for manual review
    sa.Column("id", Id, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # pause | force_route | hold
    sa.Column("scope", sa.String(16), nullable=False),  # channel | bank | region
    sa.Column("value", sa.String(64), nullable=False),
    sa.Column("method", sa.String(32)),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("ended_by", sa.String(200)),
    sa.Column("amount_above", sa.BigInteger()),  # hold: minor units of `currency`
    sa.Column("currency", sa.String(3)),  # hold: it applies to payments in this currency
    # what the control does (kind|scope|value|method|currency|amount_above): two active
    # controls never do the same thing, even when two operators set one at once
    sa.Column("signature", sa.String(200), nullable=False),
    sa.Index(None, "ended_at"),
    sa.Index(
        "uq_controls_one_active_per_signature",
        "signature",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # every operator or automatic action: who, when, what, why, with the signal values
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200)),
    sa.Column("reason", sa.String(500)),
    sa.Column("details", JSON, nullable=False),
    sa.Index(None, "at"),
)

incidents = sa.Table(
    "incidents",
    metadata,
    # a broken channel, bank or region as one record: opened and resolved by playbooks,
    # acknowledged and reviewed by operators; reviewed incidents are the case library
    sa.Column("id", Id, primary_key=True),
    sa.Column("playbook", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),  # critical | major | minor
    sa.Column("status", sa.String(16), nullable=False),  # open | resolved
    sa.Column("scope", JSON, nullable=False),  # {"channel": "sim_a", "bank": "CMB"}
    sa.Column("scope_key", sa.String(200), nullable=False),  # the health key: sim_a|bank=CMB
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("acknowledged_at", UTCDateTime()),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("affected_payments", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("diagnosis", JSON, nullable=False),  # [{dimension, value, explanatory_power, …}]
    sa.Column("review", JSON),  # {cause, resolution, lessons, reviewer, reviewed_at}
    # lower-cased words of title, playbook, scope, diagnosis and review: the search index
    sa.Column("search_text", sa.Text(), nullable=False),
    sa.Index(None, "status", "opened_at"),
    sa.Index(None, "scope_key"),
    # one open incident per playbook and scope, even with many workers evaluating playbooks
    sa.Index(
        "uq_incidents_one_open_per_playbook_scope",
        "playbook",
        "scope_key",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)

incident_events = sa.Table(
    "incident_events",
    metadata,
    # an incident's timeline: signals, actions, recoveries, notes, operator steps
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("incident_id", Id, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    # signal | action | recovery | note | acknowledged | review | resolved
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("details", JSON, nullable=False),
    sa.Index(None, "incident_id"),
)
