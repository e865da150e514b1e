"""process instances and owners; one exclusive payment per order; idempotency links

Revision ID: 0010
Revises: 0009

A database that already holds several payments in flight or paid for one order (which
paymend allowed until now) keeps them: all but the earliest are marked `split`, so the
new unique index can be built and no history is rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# payments in these statuses hold their order (as in store/tables.py when written)
HOLDING = ("created", "held", "partially_refunded", "processing", "requires_action", "succeeded")
HOLDING_SQL = ", ".join(f"'{s}'" for s in HOLDING)
WHERE = sa.text(f"NOT split AND status IN ({HOLDING_SQL})")


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("boot_id", sa.String(length=64), nullable=True),
        sa.Column("pid_namespace", sa.String(length=64), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_started", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("instances") as batch:
        batch.create_index(batch.f("ix_instances_stopped_at"), ["stopped_at"], unique=False)

    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=40), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=40), nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("claim_token", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("resource_kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("resource_id", sa.String(length=40), nullable=True))

    with op.batch_alter_table("payments") as batch:
        batch.add_column(
            sa.Column("split", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    _keep_earlier_duplicates_as_split()
    with op.batch_alter_table("payments") as batch:
        batch.create_index(
            "uq_payments_one_per_order",
            ["merchant_id", "order_id"],
            unique=True,
            sqlite_where=WHERE,
            postgresql_where=WHERE,
        )


def _keep_earlier_duplicates_as_split() -> None:
    """Orders with more than one payment holding them: the earliest stays exclusive."""
    payments = sa.table(
        "payments",
        sa.column("id", sa.String()),
        sa.column("merchant_id", sa.String()),
        sa.column("order_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("split", sa.Boolean()),
    )
    earlier = payments.alias("earlier")
    older = sa.exists().where(
        earlier.c.merchant_id == payments.c.merchant_id,
        earlier.c.order_id == payments.c.order_id,
        earlier.c.status.in_(HOLDING),
        sa.or_(
            earlier.c.created_at < payments.c.created_at,
            sa.and_(
                earlier.c.created_at == payments.c.created_at,
                earlier.c.id < payments.c.id,
            ),
        ),
    )
    op.execute(
        payments.update().where(payments.c.status.in_(HOLDING), older).values(split=sa.true())
    )


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_index("uq_payments_one_per_order", sqlite_where=WHERE, postgresql_where=WHERE)
        batch.drop_column("split")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("resource_id")
        batch.drop_column("resource_kind")
        batch.drop_column("claim_token")
        batch.drop_column("owner")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("instances") as batch:
        batch.drop_index(batch.f("ix_instances_stopped_at"))
    op.drop_table("instances")
