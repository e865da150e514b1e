"""Alembic, driven from code: `paymend db upgrade` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from paymend.store import statistics

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate, then (SQLite) refresh the query planner's statistics: without them
    SQLite picks indexes by rule of thumb and may walk the newest-first listing index
    for an order id rather than the order's own (145 ms -> 11 ms over 100,000
    payments). PostgreSQL's autovacuum keeps its own statistics. The worker gathers
    them again as the data grows (store/statistics.py)."""
    command.upgrade(alembic_config(url), revision)
    if url.startswith("sqlite"):
        analyze(url)


def analyze(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            statistics.analyze(conn)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
