"""Migration 0027: the relay's index holds only the unpublished events, the relay's
query is answered from it, and the relay sees the same backlog before, after and back."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from paymend.domain.events import EventType
from paymend.store import outbox
from paymend.store.migrate import downgrade, upgrade
from paymend.store.tables import merchants
from tests.store.rows import MERCHANT, NOW


def _indexes(engine: sa.Engine) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(engine).get_indexes("events")}


def _plan(conn: sa.Connection) -> str:
    """How the database answers the relay's query (store/outbox.py)."""
    query = "SELECT id FROM events WHERE published_at IS NULL ORDER BY seq LIMIT 100"
    if conn.dialect.name == "sqlite":
        rows = conn.execute(sa.text(f"EXPLAIN QUERY PLAN {query}"))
        return " ".join(str(r[-1]) for r in rows)
    conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # a few rows: ask for an index
    return " ".join(str(r[0]) for r in conn.execute(sa.text(f"EXPLAIN {query}")))


def test_0027_keeps_the_relays_backlog_and_answers_it_from_the_backlog_alone(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0026")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(merchants.insert(), MERCHANT)
        for i in range(6):
            at = NOW + timedelta(seconds=i)
            outbox.add(conn, f"evt_{i}", "mer_1", EventType.PAYMENT_CREATED, f"pay_{i}", {}, at)
        outbox.mark_published(conn, ["evt_0", "evt_2", "evt_3"], NOW + timedelta(minutes=1))

    def backlog() -> list[str]:
        with engine.connect() as conn:
            return [h.id for h in outbox.unpublished_heads(conn)]

    before = backlog()
    assert before == ["evt_1", "evt_4", "evt_5"]
    try:
        upgrade(empty_url)
        assert "ix_events_unpublished" in _indexes(engine)
        assert "ix_events_published_at_seq" not in _indexes(engine)
        assert backlog() == before
        with engine.begin() as conn:
            assert "ix_events_unpublished" in _plan(conn)
            outbox.mark_published(conn, ["evt_4"], NOW + timedelta(minutes=2))
        assert backlog() == ["evt_1", "evt_5"]
        downgrade(empty_url, "0026")
        assert "ix_events_unpublished" not in _indexes(engine)
        assert "ix_events_published_at_seq" in _indexes(engine)
        assert backlog() == ["evt_1", "evt_5"]
    finally:
        engine.dispose()
