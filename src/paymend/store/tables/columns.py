"""What every table shares: the metadata (and its naming convention), ids, UTC
timestamps, JSON, and how SQL text says a column is one of a few constants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from paymend.domain.utc_text import sqlite_text

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # on SQLite the text process_bind_param and the dialect's own formatting write,
        # in one call (`sqlite_utc_text`; a test holds the two to the same text)
        if dialect.name == "sqlite":
            return sqlite_utc_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_utc_text(value: datetime | None) -> str | None:
    """What UTCDateTime binds on SQLite: the UTC time as 'YYYY-MM-DD HH:MM:SS.ffffff',
    SQLite DATETIME's own storage format, written in one call (domain/utc_text.py)
    instead of process_bind_param and the dialect's %-formatting of seven fields (about
    fourteen times a payment). A payment binds one `now` to several columns in a row, so
    the text of the last time written is kept with the time itself (held, so its
    identity cannot be reused): the same object again is answered without formatting
    it again."""
    global _LAST_TEXT
    last = _LAST_TEXT
    if value is last[0]:
        return last[1]
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    text = sqlite_text(value)
    _LAST_TEXT = (value, text)
    return text


_LAST_TEXT: tuple[object, str | None] = (None, None)


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL text: `column` equals one of `values` (constants, never data), as equalities
    joined by OR rather than `IN (...)`. SQLite evaluates an IN list of more than two
    constants by building a temporary b-tree of the list, in each run of a statement
    and for each row a partial index's predicate is checked against (migration 0028)."""
    return " OR ".join(f"{column} = '{v}'" for v in values)


JSON: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")
Id = sa.String(40)
