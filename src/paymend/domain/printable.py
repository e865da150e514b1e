"""Text people read back: what operators type into controls, reasons and reviews.

Control characters (NUL, escape sequences), invisible format characters (bidi overrides
that reorder what a reader sees) and line separators have no place in a one-line value;
in the audit log they could hide or fake what was done.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

_REFUSED = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def unprintable(text: str, *, multiline: bool = False) -> str | None:
    """The first character a reader cannot see as written (as U+XXXX), or None.
    `multiline` allows line feeds and tabs, as in a review's paragraphs."""
    for ch in text:
        if multiline and ch in "\n\t":
            continue
        if unicodedata.category(ch) in _REFUSED:
            return f"U+{ord(ch):04X}"
    return None


@cache
def refused_class(*, multiline: bool = False) -> str:
    """The characters `unprintable` refuses, as the inside of a regular expression's
    character class (`\\uXXXX` ranges; surrogates left out, as no JSON string holds
    one), so the API's document can say what a field takes."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF or (multiline and chr(code) in "\n\t"):
            continue
        if unicodedata.category(chr(code)) in _REFUSED:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges)


def _escape(code: int) -> str:
    # a BMP character as \uXXXX, which every regular expression dialect reads; beyond
    # it, the character itself
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)
