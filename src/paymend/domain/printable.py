"""Text people read back: what operators type into controls, reasons and reviews.

Control characters (NUL, escape sequences), invisible format characters (bidi overrides
that reorder what a reader sees) and line separators have no place in a one-line value;
in the audit log they could hide or fake what was done.
"""

from __future__ import annotations

import unicodedata

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
