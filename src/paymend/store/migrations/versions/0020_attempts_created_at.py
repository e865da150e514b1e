"""attempts.created_at indexed: the calls of a time window (incident diagnosis)

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a diagnosis reads the calls made in a window of minutes (store/payments.py
    # `calls_between`); without this it read every attempt ever made
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attempts_created_at"), ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_created_at"))
