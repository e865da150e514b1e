"""UTC times as text, as SQLite stores them and as the API answers them.

`datetime.isoformat` formats every field of a time and then its UTC offset, which the
store cuts off and the API rewrites as `Z`, and a payment writes and answers about ten
times. Times come in runs within one second (a payment's rows, its view), so each
formatter keeps the text of the last second it wrote and adds the microseconds: the
same text in about half the time (0.6 against 1.1 µs for the store's).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["api_text", "sqlite_text"]

_Second = tuple[int, int, int, int, int, int]
_NONE: tuple[_Second | None, str] = (None, "")
# the last second each wrote and its text: one tuple, replaced whole, so a thread reads
# a second with its own text
_SQLITE = _NONE
_API = _NONE


def _second(value: datetime) -> _Second:
    return (value.year, value.month, value.day, value.hour, value.minute, value.second)


def sqlite_text(value: datetime) -> str:
    """`value` (timezone-aware) in UTC as 'YYYY-MM-DD HH:MM:SS.ffffff', the text SQLite's
    DATETIME holds: `value.astimezone(UTC).isoformat(" ", "microseconds")[:26]`."""
    global _SQLITE
    utc = value.astimezone(UTC)  # the same object when it is in UTC already
    second = _second(utc)
    known = _SQLITE
    if known[0] != second:
        known = _SQLITE = (second, utc.replace(microsecond=0, tzinfo=None).isoformat(" "))
    return f"{known[1]}.{utc.microsecond:06d}"


def api_text(value: datetime) -> str:
    """`value` as the API answers a time: ISO 8601, 'Z' for UTC, the microseconds left
    out on a whole second (`value.isoformat().replace("+00:00", "Z")`). A time in
    another zone keeps its offset."""
    global _API
    if value.tzinfo is not UTC:
        return value.isoformat().replace("+00:00", "Z")
    second = _second(value)
    known = _API
    if known[0] != second:
        known = _API = (second, value.replace(microsecond=0, tzinfo=None).isoformat())
    micros = value.microsecond
    return f"{known[1]}.{micros:06d}Z" if micros else f"{known[1]}Z"
