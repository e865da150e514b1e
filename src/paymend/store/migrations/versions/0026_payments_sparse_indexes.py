"""payments: the search indexes hold only the payments that have the searched value

Revision ID: 0026
Revises: 0025

The indexes behind the searches by customer id, failure code, email and phone (their
blind indexes) and a card's tries (payment_token) held an entry for every payment,
NULL or not. Each of those searches names a value, so the payments without one (guest
checkouts, successes, payments without contact details or a card token) were entries
that nothing reads and that every insert and status change wrote. Each index is
rebuilt as a partial one, `WHERE <column> IS NOT NULL`, under its own name; SQLite and
PostgreSQL both use it for `<column> = value`.

Rebuilding reads the payments once per index; on PostgreSQL, writes to the payments
wait while it runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# each index's columns, and the nullable one it is for; named as the tables name it
SPARSE = (
    (("merchant_id", "customer_id", "created_at"), "customer_id"),
    (("merchant_id", "failure_code", "created_at", "id"), "failure_code"),
    (("merchant_id", "customer_email_index", "created_at"), "customer_email_index"),
    (("merchant_id", "customer_phone_index", "created_at"), "customer_phone_index"),
    (("payment_token",), "payment_token"),
)


def upgrade() -> None:
    for columns, sparse in SPARSE:
        name, present = _name(columns), sa.text(f"{sparse} IS NOT NULL")
        op.drop_index(name, table_name="payments")
        op.create_index(
            name, "payments", list(columns), sqlite_where=present, postgresql_where=present
        )


def downgrade() -> None:
    for columns, _ in SPARSE:
        op.drop_index(_name(columns), table_name="payments")
        op.create_index(_name(columns), "payments", list(columns))


def _name(columns: tuple[str, ...]) -> str:
    return f"ix_payments_{'_'.join(columns)}"
