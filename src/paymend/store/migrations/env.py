"""Alembic environment: runs migrations against the URL paymend passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from paymend.store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
