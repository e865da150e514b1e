"""The work behind the scenes: process instances, durable jobs, webhook deliveries."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import Id, UTCDateTime, metadata

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
