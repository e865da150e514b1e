"""indexes for listing a merchant's payments and events newest first, page by page

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_payments_merchant_id_created_at_id", "payments", ["merchant_id", "created_at", "id"]
    )
    op.create_index("ix_events_merchant_id_seq", "events", ["merchant_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_merchant_id_seq", "events")
    op.drop_index("ix_payments_merchant_id_created_at_id", "payments")
