"""Customer notices: one intent per (payment, kind) ever, and every try of it."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata

notice_intents = sa.Table(
    "notice_intents",
    metadata,
    sa.Column("id", Id, primary_key=True),
    # "<payment id>:<kind>": the database refuses a second intent, whoever writes it
    sa.Column("dedupe_key", sa.String(80), nullable=False, unique=True),
    sa.Column("merchant_id", Id, nullable=False),
    sa.Column("payment_id", Id, nullable=False),
    sa.Column("order_id", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("event_id", Id, nullable=False),  # the outbox event that asked for it
    sa.Column("customer_key", sa.String(200)),  # who, for the per-hour limit (no contact)
    # pending | sent | dropped (not needed any more) | failed (every channel failed)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("channel_index", sa.Integer(), nullable=False),  # in the policy's order
    sa.Column("tries", sa.Integer(), nullable=False),  # on the current channel
    sa.Column("channel", sa.String(16)),  # the one that delivered
    sa.Column("reason", sa.String(1000)),  # channels skipped and why; why dropped
    sa.Column("facts", JSON, nullable=False),  # the event's payload: masked, no contact
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # when it was counted against the customer's hourly limit: just before its first try
    sa.Column("sent_at", UTCDateTime()),
    sa.Index(None, "merchant_id", "order_id"),
    sa.Index(None, "customer_key", "sent_at"),
)

notice_attempts = sa.Table(
    "notice_attempts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("intent_id", Id, sa.ForeignKey("notice_intents.id"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(200), nullable=False),  # masked
    sa.Column("delivered", sa.Boolean(), nullable=False),
    sa.Column("code", sa.Integer()),
    sa.Column("error", sa.String(500)),  # the provider's answer when not delivered
    sa.Column("latency_ms", sa.Integer(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index(None, "intent_id"),
)

customer_notice_prefs = sa.Table(
    "customer_notice_prefs",
    metadata,
    # what a shop's customer asked of its notices: channels they opted out of, and their
    # WeChat openid (sealed like phone and email: store/pii.py)
    sa.Column("merchant_id", Id, primary_key=True),
    sa.Column("customer_id", sa.String(200), primary_key=True),
    sa.Column("opt_out", JSON, nullable=False),  # ["sms", ...]
    sa.Column("wechat_openid_sealed", sa.String(400)),
    sa.Column("wechat_openid_masked", sa.String(80)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
