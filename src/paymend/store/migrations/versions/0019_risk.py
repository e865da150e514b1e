"""risk_decisions, risk_lists and risk_reports: risk control's record

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "risk_decisions",
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("rules_version", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("fired", json, nullable=False),
        sa.Column("features", json, nullable=False),
        sa.Column("shadow_verdict", sa.String(length=16), nullable=True),
        sa.Column("card", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=64), nullable=False),
        sa.Column("amount_major", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_risk_decisions")),
    )
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        for cols in (
            ["card", "created_at"],
            ["customer_id", "created_at"],
            ["device", "created_at"],
            ["ip", "created_at"],
            ["email", "created_at"],
            ["created_at"],
        ):
            batch_op.create_index(
                batch_op.f("ix_risk_decisions_" + "_".join(cols)), cols, unique=False
            )
    op.create_table(
        "risk_lists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("shown", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_lists")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_risk_lists_kind_value")),
    )
    op.create_table(
        "risk_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("card", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_reports")),
        sa.UniqueConstraint("payment_id", "kind", name=op.f("uq_risk_reports_payment_id_kind")),
    )
    with op.batch_alter_table("risk_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_reports_customer_id"), ["customer_id"])
        batch_op.create_index(batch_op.f("ix_risk_reports_card"), ["card"])


def downgrade() -> None:
    op.drop_table("risk_reports")
    op.drop_table("risk_lists")
    op.drop_table("risk_decisions")
