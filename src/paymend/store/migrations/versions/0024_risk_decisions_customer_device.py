"""risk_decisions by customer and device: whether a customer was decided on this device

Revision ID: 0024
Revises: 0023

Every payment's risk history asks whether its customer was ever decided on before, and
on this device (`device_new`, store/risk.py). Without this index the second question
walked every decision of the device (or of the customer) and read each row: a cost that
grew with the device's history, the worst for a card tester's emulator. With it, the
first index entry answers both.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_decisions") as batch:
        batch.create_index(
            batch.f("ix_risk_decisions_customer_id_device"),
            ["customer_id", "device"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("risk_decisions") as batch:
        batch.drop_index(batch.f("ix_risk_decisions_customer_id_device"))
