"""Alembic, driven from code: `paymend db upgrade` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

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


NO_SCHEMA = "the database has no paymend schema: run `paymend db upgrade`"


def schema_problem(url: str) -> str | None:
    """Why this code cannot run on the database at `url` as it stands, or None: a
    database never migrated (a new one: `paymend db upgrade` was not run), one behind
    this code's migrations, or one a newer paymend migrated. Served as it is, the first
    request or the worker's first sweep would fail on a missing table."""
    parsed = sa.engine.make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not file.startswith("file:") and not Path(file).exists():
        # not opened: SQLite would create the file, and a mistyped path would be left behind
        return NO_SCHEMA
    script = ScriptDirectory.from_config(alembic_config(url))
    heads = set(script.get_heads())
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    if current == heads:
        return None
    if not current:
        return NO_SCHEMA
    known = {rev.revision for rev in script.walk_revisions()}
    if current - known:
        return (
            f"the database is at revision {', '.join(sorted(current))}, which this paymend "
            "does not know: a newer paymend migrated it"
        )
    return (
        f"the database is at revision {', '.join(sorted(current))}, this paymend needs "
        f"{', '.join(sorted(heads))}: run `paymend db upgrade`"
    )


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
