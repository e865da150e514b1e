"""payments.customer_id and an index on payment_token, for per-customer and per-card
look-ups (message escalation, the card networks' reattempt limits)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=128), nullable=True))
        batch_op.create_index(
            "ix_payments_merchant_id_customer_id_created_at",
            ["merchant_id", "customer_id", "created_at"],
        )
        batch_op.create_index("ix_payments_payment_token", ["payment_token"])


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_index("ix_payments_payment_token")
        batch_op.drop_index("ix_payments_merchant_id_customer_id_created_at")
        batch_op.drop_column("customer_id")
