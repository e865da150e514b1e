"""payments: an index of the failed ones, with their failure codes

Revision ID: 0025
Revises: 0024

Every payment's risk assessment reads the decisions that share a card, customer,
device, IP or email with it over the last 24 hours, and for each whether its payment
failed and with which code (velocity's `failed` and `fraud` counts, store/risk.py).
Joined to the payments by id, each row cost a search of the payments' id index and one
of their table; most payments do not fail, so a partial index of the failed ones (id
and code) answers the same question from a small index that stays in the cache.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    failed = sa.text("status = 'failed'")
    op.create_index(
        "ix_payments_failed",
        "payments",
        ["id", "failure_code"],
        unique=False,
        sqlite_where=failed,
        postgresql_where=failed,
    )


def downgrade() -> None:
    op.drop_index("ix_payments_failed", table_name="payments")
