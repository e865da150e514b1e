"""events: the relay's index holds only the events not yet published

Revision ID: 0027
Revises: 0026

The outbox relay asks for the unpublished events in order, `WHERE published_at IS NULL
ORDER BY seq`, through an index on (published_at, seq) that held every event ever
written: each event's entry was written once at its insert and moved when it was
published, and the index grew with the table though the relay only ever reads its
first few entries. It is replaced by `ix_events_unpublished`, (seq) of the events whose
published_at is NULL: an event enters it when written and leaves it when published,
so it holds the relay's backlog and nothing else. SQLite and PostgreSQL both use it for
the relay's query, whose condition is its predicate.

Building it reads the events once; on PostgreSQL, writes to the events wait while it
runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_events_unpublished",
        "events",
        ["seq"],
        sqlite_where=UNPUBLISHED,
        postgresql_where=UNPUBLISHED,
    )
    op.drop_index("ix_events_published_at_seq", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_published_at_seq", "events", ["published_at", "seq"])
    op.drop_index("ix_events_unpublished", table_name="events")
