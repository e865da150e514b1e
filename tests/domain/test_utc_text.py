"""UTC times as text (domain/utc_text.py) read as `isoformat` writes them, whatever
came before: each formatter keeps the text of the last second it wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.domain.utc_text import api_text, sqlite_text, sqlite_texter

_ZONES: list[tzinfo | None] = [
    UTC,
    timezone(timedelta(hours=8)),
    timezone(timedelta(hours=-3, minutes=-30)),
]
_NAIVE = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9998, 12, 30))


@st.composite
def _runs(draw: st.DrawFn, zones: list[tzinfo | None]) -> list[datetime]:
    """Times as a payment formats them: a few nearby seconds (next to one another, or a
    minute, an hour, a day, a month or a year apart, so that only one field differs),
    each at several microseconds (the whole second among them), in any zone."""
    base = draw(_NAIVE)
    day = 86400
    steps = st.sampled_from([1, 60, 3600, day, 30 * day, 31 * day, 365 * day, -1])
    steps |= st.integers(-120, 120)
    seconds = [base + timedelta(seconds=s) for s in draw(st.lists(steps, max_size=4))] + [base]
    picks = st.tuples(
        st.sampled_from(seconds),
        st.sampled_from([0, 1, 999_999, 123_456]) | st.integers(0, 999_999),
        st.sampled_from(zones),
    )
    return [t.replace(microsecond=us, tzinfo=z) for t, us, z in draw(st.lists(picks, max_size=30))]


@settings(max_examples=300, deadline=None)
@given(_runs(_ZONES))
def test_sqlite_text_is_the_utc_isoformat_cut_to_microseconds(times: list[datetime]) -> None:
    for t in times:
        assert sqlite_text(t) == t.astimezone(UTC).isoformat(" ", "microseconds")[:26]


@settings(max_examples=300, deadline=None)
@given(_runs([*_ZONES, None]))
def test_api_text_is_isoformat_with_z_for_utc(times: list[datetime]) -> None:
    for t in times:
        assert api_text(t) == t.isoformat().replace("+00:00", "Z")


def test_a_whole_second_leaves_the_microseconds_out_only_for_the_api() -> None:
    t = datetime(2026, 12, 4, 18, 0, 1, tzinfo=UTC)
    assert api_text(t) == "2026-12-04T18:00:01Z"
    assert api_text(t.replace(microsecond=5)) == "2026-12-04T18:00:01.000005Z"
    assert sqlite_text(t) == "2026-12-04 18:00:01.000000"
    east = t.replace(tzinfo=timezone(timedelta(hours=8)))
    assert sqlite_text(east) == "2026-12-04 10:00:01.000000"
    assert api_text(east) == "2026-12-04T18:00:01+08:00"


@settings(max_examples=200, deadline=None)
@given(_runs(_ZONES), _runs(_ZONES))
def test_a_formatter_of_its_own_writes_the_stores_text_beside_the_shared_one(
    own_times: list[datetime], shared_times: list[datetime]
) -> None:
    """`sqlite_texter` keeps its own last second: turns of it and of the shared formatter,
    each at times of its own, both write what `isoformat` writes."""
    own = sqlite_texter()
    for a, b in zip(own_times, shared_times, strict=False):
        assert own(a) == a.astimezone(UTC).isoformat(" ", "microseconds")[:26]
        assert sqlite_text(b) == b.astimezone(UTC).isoformat(" ", "microseconds")[:26]
