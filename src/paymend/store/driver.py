"""A driver's error as SQLAlchemy raises it, for statements run on the DB-API cursor."""

from __future__ import annotations

from sqlalchemy import exc
from sqlalchemy.engine import Connection

__all__ = ["driver_error"]


def driver_error(conn: Connection, sql: str, error: Exception) -> exc.StatementError:
    """A driver's error from a statement run on its own connection, as SQLAlchemy's
    `Connection.execute` raises it (parameters hidden): what callers catch and what the
    store tells as `database_unavailable`."""
    return exc.DBAPIError.instance(
        sql,
        None,
        error,
        conn.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        dialect=conn.dialect,
    )
