"""The shared column types: UTCDateTime binds on SQLite the text SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from paymend.store.tables.columns import UTCDateTime, sqlite_utc_text

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]
)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), _ZONES)
def test_sqlite_times_are_bound_as_sqlalchemy_writes_them(naive: datetime, zone: Any) -> None:
    """UTCDateTime binds on SQLite with its own function (`sqlite_utc_text`), for
    `execute` and store/prepared.py alike: the text its process_bind_param followed by
    SQLite DATETIME's own processor writes, for any aware time; a naive one is refused
    as before."""
    dialect = sqlite.dialect()
    column = UTCDateTime()
    assert column.dialect_impl(dialect).bind_processor(dialect) is sqlite_utc_text
    theirs = sqlite.DATETIME().bind_processor(dialect)
    value = naive.replace(tzinfo=zone)
    assert sqlite_utc_text(value) == theirs(column.process_bind_param(value, dialect))
    assert sqlite_utc_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(naive)
