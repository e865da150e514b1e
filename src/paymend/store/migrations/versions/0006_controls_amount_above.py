"""hold controls: payments above an amount wait for manual review

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("controls") as batch:
        batch.add_column(sa.Column("amount_above", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("controls") as batch:
        batch.drop_column("amount_above")
