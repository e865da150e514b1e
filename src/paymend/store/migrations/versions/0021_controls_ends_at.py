"""controls.ends_at, login_failures, payments by failure code: the console's leftovers

Revision ID: 0021
Revises: 0020

controls.ends_at: a control lifts itself then; nullable: controls set before (and a
playbook's, which its recovery lifts) have none. login_failures: the console's failed
log-ins by name and by address, counted over a window. An index for the search of a
merchant's payments by failure code, newest first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("controls", sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("payments") as batch:
        batch.create_index(
            batch.f("ix_payments_merchant_id_failure_code_created_at_id"),
            ["merchant_id", "failure_code", "created_at", "id"],
            unique=False,
        )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures") as batch:
        batch.create_index(batch.f("ix_login_failures_ip_at"), ["ip", "at"], unique=False)
        batch.create_index(batch.f("ix_login_failures_name_at"), ["name", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("payments") as batch:
        batch.drop_index(batch.f("ix_payments_merchant_id_failure_code_created_at_id"))
    with op.batch_alter_table("controls") as batch:
        batch.drop_column("ends_at")
