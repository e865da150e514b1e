"""notice_intents and notice_attempts: customer notices, once per (payment, kind)

Revision ID: 0016
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_intents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=80), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("customer_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel_index", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("facts", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_intents")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notice_intents_dedupe_key")),
    )
    with op.batch_alter_table("notice_intents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_intents_merchant_id_order_id"),
            ["merchant_id", "order_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notice_intents_customer_key_sent_at"),
            ["customer_key", "sent_at"],
            unique=False,
        )
    op.create_table(
        "notice_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"],
            ["notice_intents.id"],
            name=op.f("fk_notice_attempts_intent_id_notice_intents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_attempts")),
    )
    with op.batch_alter_table("notice_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_attempts_intent_id"), ["intent_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("notice_attempts")
    op.drop_table("notice_intents")
