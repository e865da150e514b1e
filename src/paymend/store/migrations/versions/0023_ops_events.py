"""ops_events: failures that page ops without an incident

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ops_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("playbook", sa.String(length=64), nullable=True),
        sa.Column("scope", _JSON, nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("facts", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_ops_events_dedupe_key")),
    )
    with op.batch_alter_table("ops_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ops_events_status"), ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("ops_events")
