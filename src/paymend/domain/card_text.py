"""Finding card numbers (PANs) in text, whatever their form.

A card number can hide in many forms: digits of any script (full-width `４２４２…`,
Arabic-Indic `٤٢٤٢…`), invisible characters between them (zero-width space, soft hyphen),
any common separator (`4242.4242…`, `4242_4242…`, no-break or ideographic spaces, dashes
of every kind), a leading `+`. Text is first read into *runs*: digits normalised to ASCII,
invisible characters dropped, groups of digits joined by at most three separator
characters. A stretch of whole groups of 12 to 19 digits that a network issues (its IIN
range and length, `card_networks.py`) with a valid Luhn digit is a card number.

Shape alone cannot tell a card number from a random 16-digit order id, so which rule
applies to a value is decided by its field (`card_data.py`). Logs are stricter than any
field: `mask_card_numbers` masks every card number, an order id that looks like one
included.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

from paymend.domain.card_networks import MAX_LENGTH, is_card_number, printed_like_a_card
from paymend.domain.sandbox_cards import SANDBOX_CARD_NUMBERS

MIN_PAN_DIGITS = 12
MAX_GAP = 3  # separator characters allowed between two groups of one number

_SEPARATORS = frozenset(" \t\n\r\f\v-._/\\,·•‧∙・−")
_SEPARATOR = "s"
_INVISIBLE = ""
_OTHER = "x"
_DIGIT_RE = re.compile(r"\d")


@functools.lru_cache(maxsize=16384)
def _char_class(ch: str) -> str:
    """'0'-'9' for a decimal digit of any script, `_SEPARATOR`, `_INVISIBLE` (format
    characters, combining marks, control characters that are not spaces), or `_OTHER`."""
    value = unicodedata.decimal(ch, -1)
    if value >= 0:
        return chr(48 + value)
    if ch in _SEPARATORS or ch.isspace():
        return _SEPARATOR
    category = unicodedata.category(ch)
    if category in ("Zs", "Zl", "Zp", "Pd"):
        return _SEPARATOR
    if category in ("Cf", "Cc", "Mn", "Me"):
        return _INVISIBLE
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) == 1 and folded in _SEPARATORS:
        return _SEPARATOR  # full-width and small forms: ．／＿，﹒
    return _OTHER


@dataclass(frozen=True, slots=True)
class Run:
    """Digits joined by separators: `groups` as ASCII, `start`/`end` in the original
    text, and whether it was `plain` (ASCII digits, nothing invisible between them)."""

    groups: tuple[str, ...]
    start: int
    end: int
    plain: bool

    def windows(self) -> Iterator[str]:
        """Every stretch of whole groups long enough to be a card number."""
        g = self.groups
        for i in range(len(g)):
            total = 0
            for j in range(i, len(g)):
                total += len(g[j])
                if total > MAX_LENGTH:
                    break
                if total >= MIN_PAN_DIGITS:
                    yield "".join(g[i : j + 1])


def runs(text: str) -> list[Run]:
    """The runs of digits in `text` (see the module's docstring)."""
    found: list[Run] = []
    groups: list[str] = []
    digits: list[str] = []
    gap = start = end = 0
    plain = True
    hidden = False  # an invisible character since the last digit

    def close() -> None:
        nonlocal groups, digits
        if digits:
            groups.append("".join(digits))
            found.append(Run(tuple(groups), start, end, plain))
        groups, digits = [], []

    for i, ch in enumerate(text):
        kind = _char_class(ch)
        if len(kind) == 1 and kind.isdigit():
            if not digits:
                start, plain = i, True
            elif gap:
                groups.append("".join(digits))
                digits = []
            if hidden or kind != ch:
                plain = False
            digits.append(kind)
            end, gap, hidden = i + 1, 0, False
        elif kind == _SEPARATOR:
            if digits:
                gap += 1
                if gap > MAX_GAP:
                    close()
                    gap, hidden = 0, False
        elif kind == _INVISIBLE:
            hidden = bool(digits)
        else:
            close()
            gap, hidden = 0, False
    close()
    return found


def _ascii_joiners() -> str:
    """The ASCII characters `runs` lets stand between two digits of one run."""
    return "".join(c for c in map(chr, range(128)) if _char_class(c) in (_SEPARATOR, _INVISIBLE))


# In ASCII text, 12 digits with nothing but separators and invisible characters between
# them (any number: a loose bound on `runs`' rule). Text without such a stretch has no
# run long enough to be a card number, and one C-level search says so. The joiners are
# never digits, so a possessive `*+` gives up a failed start at once instead of trying
# every split of a stretch of joiners.
_JOINERS = re.escape(_ascii_joiners())
_ASCII_CANDIDATE = re.compile(f"[0-9](?:[{_JOINERS}]*+[0-9]){{11}}")
# Every such stretch begins with a digit and 11 more digits or joiners. This flat search
# rules most texts out (ids, trace ids, times: digits among letters) in a third of the
# time the nested one takes to fail on them.
_ASCII_WINDOW = re.compile(f"[0-9][0-9{_JOINERS}]{{11}}")


def _few_digits(text: str) -> bool:
    """`text` cannot hold a card number: most strings checked (log fields, ids, names)
    are shorter than one, or ASCII without 12 digits in one run."""
    if len(text) < MIN_PAN_DIGITS:
        return True
    if text.isascii():
        return _ASCII_WINDOW.search(text) is None or _ASCII_CANDIDATE.search(text) is None
    return len(_DIGIT_RE.findall(text)) < MIN_PAN_DIGITS


def has_card_number(text: str) -> bool:
    """Any card number in any form (the rule for free text, keys and logs)."""
    if _few_digits(text):
        return False
    return any(is_card_number(w) for run in runs(text) for w in run.windows())


def has_unmistakable_card_number(text: str) -> bool:
    """A card number an identifier field cannot be holding by chance: a sandbox card
    number in any form, digits grouped as cards print them, or digits that needed
    normalising. A plain run of ASCII digits is an id."""
    if _few_digits(text):
        return False
    for run in runs(text):
        if any(w in SANDBOX_CARD_NUMBERS for w in run.windows()):
            return True
        if not run.plain and any(is_card_number(w) for w in run.windows()):
            return True
        if printed_like_a_card(run.groups) and is_card_number("".join(run.groups)):
            return True
    return False


_PHONE_TEXT = re.compile(r"^\s*(?:\+|00)?[0-9][0-9 ().\-]*$")


def is_phone_number(text: str) -> bool:
    """`text` is written like a phone number (ASCII digits, spaces, dashes, dots,
    parentheses, a leading + or 00) and libphonenumber deems it possible: a country code
    and a length that country's numbers have."""
    if not _PHONE_TEXT.match(text):
        return False
    digits = "".join(c for c in text if c.isdigit())
    if text.lstrip().startswith("00"):
        digits = digits[2:]
    if not 7 <= len(digits) <= 15:
        return False
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def mask_card_numbers(text: str) -> str:
    """`text` with every run of digits that holds a card number replaced by
    `[card ****1234]` (its last four digits), whatever the field it came from."""
    if _few_digits(text):
        return text
    parts: list[str] = []
    last = 0
    for run in runs(text):
        pans = [w for w in run.windows() if is_card_number(w)]
        if pans:
            parts.append(text[last : run.start])
            parts.append(f"[card ****{pans[-1][-4:]}]")
            last = run.end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)
