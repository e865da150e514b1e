"""attempts.next_action: what the customer must do for a provider's charge

Revision ID: 0012
Revises: 0010

A real provider may answer a charge with an action for the customer (Alipay: a QR code
to scan, or a redirect to its cashier page): the attempt keeps it, and the payment's
`next_action` shows it. Nullable: no earlier attempt had one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "attempts",
        sa.Column("next_action", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("attempts", "next_action")
