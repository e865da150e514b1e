"""customer email and phone sealed at rest: sealed columns, blind indexes, masked JSON

Existing rows move too: with PAYMEND_DATA_KEY set while migrating, each clear email and
phone is sealed and indexed; without it, they are reduced to their masked forms (the
clear text is gone either way).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from paymend.domain.payment import Customer
from paymend.store.pii import Vault, customer_columns

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = (
    "customer_email_sealed",
    "customer_phone_sealed",
    "customer_email_index",
    "customer_phone_index",
)
BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("customer_email_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("customer_phone_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("customer_email_index", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("customer_phone_index", sa.String(length=64), nullable=True))
        batch.create_index(
            "ix_payments_merchant_id_customer_email_index_created_at",
            ["merchant_id", "customer_email_index", "created_at"],
        )
        batch.create_index(
            "ix_payments_merchant_id_customer_phone_index_created_at",
            ["merchant_id", "customer_phone_index", "created_at"],
        )
    vault = Vault.from_settings(
        os.environ.get("PAYMEND_DATA_KEY"), os.environ.get("PAYMEND_DATA_KEYS_OLD")
    )
    conn = op.get_bind()
    table = sa.table(
        "payments",
        sa.column("id", sa.String()),
        sa.column("customer", sa.JSON().with_variant(JSONB(), "postgresql")),
        sa.column("customer_id", sa.String()),
        *(sa.column(name, sa.String()) for name in COLUMNS),
    )
    last = ""
    while True:  # in batches by id: a large table never sits in memory at once
        rows = conn.execute(
            sa.select(table.c.id, table.c.customer)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for pid, stored in rows:
            data = stored if isinstance(stored, dict) else {}
            if not (data.get("email") or data.get("phone")):
                continue
            customer = Customer(
                data.get("id"), data.get("locale"), data.get("phone"), data.get("email")
            )
            values = customer_columns(vault, pid, customer)
            del values["customer_id"]  # unchanged
            conn.execute(table.update().where(table.c.id == pid).values(**values))
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_index("ix_payments_merchant_id_customer_phone_index_created_at")
        batch.drop_index("ix_payments_merchant_id_customer_email_index_created_at")
        for name in reversed(COLUMNS):
            batch.drop_column(name)
