"""payments: on SQLite, the order guard's predicate written as comparisons

Revision ID: 0028
Revises: 0027

`uq_payments_one_per_order` (migration 0010) holds the payments whose status holds
their order, `status IN (six statuses)`. SQLite evaluates a partial index's predicate
for every row it writes, once for an insert and twice for an update (the old row and
the new), and it evaluates an IN list of more than two constants by building a
temporary b-tree of the list and looking the status up in it: three b-trees built and
dropped for each payment. The same condition written as six equalities joined by OR is
six comparisons of a short string. The index holds the same rows and refuses the same
second payment on an order; only how SQLite decides whether a row belongs to it
changes. PostgreSQL evaluates IN over constants as an array comparison and keeps the
index as it is.

Building it reads the payments once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

NAME = "uq_payments_one_per_order"
HOLDING = ("created", "held", "partially_refunded", "processing", "requires_action", "succeeded")
_LISTED = ", ".join(f"'{s}'" for s in HOLDING)
_COMPARED = " OR ".join(f"status = '{s}'" for s in HOLDING)
IN_LIST = sa.text(f"NOT split AND status IN ({_LISTED})")
COMPARED = sa.text(f"NOT split AND ({_COMPARED})")


def _rebuild(where: sa.TextClause) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index(NAME, table_name="payments")
    op.create_index(NAME, "payments", ["merchant_id", "order_id"], unique=True, sqlite_where=where)


def upgrade() -> None:
    _rebuild(COMPARED)


def downgrade() -> None:
    _rebuild(IN_LIST)
