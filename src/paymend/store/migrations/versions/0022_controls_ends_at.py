"""controls.ends_at: an emergency control lifts itself at its end time

Revision ID: 0022
Revises: 0019

Nullable: controls set before (and a playbook's, which its recovery lifts) have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("controls", sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("controls") as batch:
        batch.drop_column("ends_at")
