"""The query planner's statistics on SQLite, kept current as the data grows.

Without them SQLite chooses indexes by rule of thumb and may walk the newest-first
listing index for an order id rather than the order's own (docs/console.md, the search's
figures). `paymend db upgrade` gathers them (store/migrate.py), but a database filled
after its last upgrade would have none, or figures from when it held a tenth of its
payments. So the worker asks every hour (engine/worker.py): when the payments table has
no statistics, or has grown or shrunk by half or more since they were last gathered, it
runs ANALYZE again, bounded by `PRAGMA analysis_limit` (well under a second however
large the tables; https://sqlite.org/lang_analyze.html). The check reads two rows.

The bound makes the row counts in `sqlite_stat1` samples, not counts, so the number of
payments the statistics stand for is remembered here: from the worker's own gathering,
else (statistics gathered before it started, by `paymend db upgrade`) the number it
first saw. SQLite's own `PRAGMA optimize` judges the same only from version 3.46 (for
tables the connection never queried); the SQLite Python ships with may be older.
PostgreSQL's autovacuum keeps its statistics by itself: nothing to do there.
"""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.database import Connection

__all__ = ["ANALYSIS_LIMIT", "MIN_ROWS", "PlannerStatistics", "analyze", "has_statistics"]

# rows ANALYZE reads per index: statistics good enough to choose an index
ANALYSIS_LIMIT = 2000
MIN_ROWS = 1000  # below this every plan is fast: no need to gather anything
DRIFT = 2.0  # the factor of growth (or shrinkage) that makes statistics stale


def analyze(conn: Connection) -> None:
    """Gather the statistics of every table, bounded (SQLite only)."""
    conn.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
    conn.exec_driver_sql("ANALYZE")


def has_statistics(conn: Connection) -> bool:
    """Has ANALYZE ever gathered the payments table's (with rows in it)?"""
    exists = conn.execute(
        sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    ).first()
    if exists is None:
        return False
    query = "SELECT 1 FROM sqlite_stat1 WHERE tbl = 'payments' AND stat IS NOT NULL LIMIT 1"
    return conn.execute(sa.text(query)).first() is not None


def payments_count(conn: Connection) -> int:
    """The number of payments, near enough: their rowid grows with each one, and the
    largest is read from the end of the table's b-tree."""
    return int(conn.execute(sa.text("SELECT max(rowid) FROM payments")).scalar() or 0)


class PlannerStatistics:
    """One process's keeper of the statistics (the worker's)."""

    def __init__(self) -> None:
        self.stands_for: int | None = None  # payments when they were last gathered

    def refresh(self, conn: Connection) -> bool:
        """Gather the statistics again when they are stale; True when it did.
        PostgreSQL: autovacuum's work, nothing done."""
        if conn.dialect.name != "sqlite":
            return False
        rows = payments_count(conn)
        if rows < MIN_ROWS:
            return False
        known = self.stands_for
        if known is None and has_statistics(conn):
            self.stands_for = rows  # gathered before this process: by the last upgrade
            return False
        if known is not None and known / DRIFT < rows < known * DRIFT:
            return False
        analyze(conn)
        self.stands_for = rows
        return True
