"""The shared column types: UTCDateTime binds on SQLite the text SQLAlchemy would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from paymend.store.tables.columns import UTCDateTime, sqlite_utc_text


def _sqlite_datetime_processor(dialect: sa.Dialect) -> Callable[[Any], Any]:
    """What SQLAlchemy's own DateTime writes on SQLite (its sqlite.DATETIME)."""
    impl = sa.DateTime().dialect_impl(dialect)
    assert isinstance(impl, sqlite.DATETIME)
    process = impl.bind_processor(dialect)
    assert process is not None
    return process


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
    theirs = _sqlite_datetime_processor(dialect)
    value = naive.replace(tzinfo=zone)
    assert sqlite_utc_text(value) == theirs(column.process_bind_param(value, dialect))
    assert sqlite_utc_text(None) is None
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(naive)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=_ZONES),
        min_size=1,
        max_size=8,
    ),
    st.randoms(),
)
def test_a_time_bound_again_is_written_as_the_first_time(times: list[datetime], rng: Any) -> None:
    """The text of the time bound last is kept for the next bind of the same object (a
    payment binds the same `now` to several columns): any order of binds, repeats and
    equal times in other zones included, gives each its own text."""
    dialect = sqlite.dialect()
    column = UTCDateTime()
    theirs = _sqlite_datetime_processor(dialect)
    binds = [rng.choice(times) for _ in range(3 * len(times))]
    for value in binds:
        assert sqlite_utc_text(value) == theirs(column.process_bind_param(value, dialect))
        assert sqlite_utc_text(value) == sqlite_utc_text(value)
