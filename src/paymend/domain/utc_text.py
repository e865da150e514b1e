"""UTC times as text, as SQLite stores them and as the API answers them.

`datetime.isoformat` formats every field of a time and then its UTC offset, which the
store cuts off and the API rewrites as `Z`, and a payment writes and answers about ten
times. Times come in runs within one second (a payment's rows, its view), so each
formatter keeps the text of the last second it wrote and adds the microseconds: the
same text in about half the time for the store's (0.57 against 1.1 µs) and two
thirds for the API's (0.52 against 0.8 µs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["api_text", "sqlite_text", "sqlite_texter"]


class _SecondText:
    """The text of the last second one formatter wrote ('YYYY-MM-DD<sep>HH:MM:SS'), kept
    with that second: one tuple, replaced whole, so a thread reads a second with its
    own text."""

    __slots__ = ("_known", "_sep")

    def __init__(self, sep: str) -> None:
        self._sep = sep
        self._known: tuple[tuple[int, ...], str] = ((), "")

    def __call__(self, utc: datetime) -> str:
        second = (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)
        known = self._known
        if known[0] != second:
            text = utc.replace(microsecond=0, tzinfo=None).isoformat(self._sep)
            known = self._known = (second, text)
        return known[1]

    def sqlite(self, value: datetime) -> str:
        """`value` (timezone-aware) in UTC as 'YYYY-MM-DD HH:MM:SS.ffffff', the text
        SQLite's DATETIME holds:
        `value.astimezone(UTC).isoformat(" ", "microseconds")[:26]`."""
        utc = value.astimezone(UTC)  # the same object when it is in UTC already
        return f"{self(utc)}.{utc.microsecond:06d}"


_SQLITE = _SecondText(" ")
_API = _SecondText("T")

# `_SecondText.sqlite` with the store's formatter: the text of every time it binds
sqlite_text = _SQLITE.sqlite


def sqlite_texter() -> Callable[[datetime], str]:
    """`sqlite_text` with a last second of its own: for a value that moves with the clock
    apart from the rest (a window's start, a day or an hour before each payment's time),
    which would otherwise take the shared formatter's second from the payment's own
    times, and they its."""
    return _SecondText(" ").sqlite


def api_text(value: datetime) -> str:
    """`value` as the API answers a time: ISO 8601, 'Z' for UTC, the microseconds left
    out on a whole second (`value.isoformat().replace("+00:00", "Z")`). A time in
    another zone keeps its offset."""
    if value.tzinfo is not UTC:
        return value.isoformat().replace("+00:00", "Z")
    head, micros = _API(value), value.microsecond
    return f"{head}.{micros:06d}Z" if micros else f"{head}Z"
