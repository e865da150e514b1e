"""Risk control: each payment's decision (with the keys its velocity is counted by), the
allow and block lists ops keep, and the chargebacks and fraud reported on payments."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata

risk_decisions = sa.Table(
    "risk_decisions",
    metadata,
    sa.Column("payment_id", Id, primary_key=True),
    sa.Column("merchant_id", Id, nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),  # allow | challenge | review | block
    sa.Column("rules_version", sa.String(64), nullable=False),
    sa.Column("score", sa.Integer(), nullable=False),
    sa.Column("fired", JSON, nullable=False),  # [{rule, action, shadow}], in order
    sa.Column("features", JSON, nullable=False),  # those not at their default
    sa.Column("shadow_verdict", sa.String(16)),  # with the shadow rules enforced
    # the keys velocity is counted by ("" unknown); the email only as a hash
    sa.Column("card", sa.String(128), nullable=False),
    sa.Column("customer_id", sa.String(200), nullable=False),  # "<merchant>/<customer>"
    sa.Column("device", sa.String(128), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("email", sa.String(64), nullable=False),
    sa.Column("amount_major", sa.Float(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "card", "created_at"),
    sa.Index(None, "customer_id", "created_at"),
    sa.Index(None, "customer_id", "device"),  # has the customer been seen on this device
    sa.Index(None, "device", "created_at"),
    sa.Index(None, "ip", "created_at"),
    sa.Index(None, "email", "created_at"),
    sa.Index(None, "created_at"),
)

risk_lists = sa.Table(
    "risk_lists",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # card | email | device | ip | customer
    sa.Column("value", sa.String(128), nullable=False),  # emails as their hash
    sa.Column("shown", sa.String(128), nullable=False),  # what ops see (an email masked)
    sa.Column("action", sa.String(8), nullable=False),  # allow | block
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("kind", "value"),
)

risk_reports = sa.Table(
    "risk_reports",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("payment_id", Id, nullable=False),
    sa.Column("merchant_id", Id, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # chargeback | fraud
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("card", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("payment_id", "kind"),
    sa.Index(None, "customer_id"),
    sa.Index(None, "card"),
)
