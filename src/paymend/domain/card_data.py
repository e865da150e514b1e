"""Finding card numbers (PANs) in what merchants send, whatever their form, and deciding
by the field whether a number that looks like one is one.

A card number can hide in many forms: digits of any script (full-width `４２４２…`,
Arabic-Indic `٤٢٤٢…`), invisible characters between them (zero-width space, soft hyphen),
any common separator (`4242.4242…`, `4242_4242…`, no-break or ideographic spaces, dashes
of every kind), a leading `+`. Text is first read into *runs*: digits normalised to ASCII,
invisible characters dropped, groups of digits joined by at most three separator
characters. A stretch of whole groups of 12 to 19 digits that a network issues (its IIN
range and length, `card_networks.py`) with a valid Luhn digit is a card number.

Shape alone cannot tell a card number from a random 16-digit order id: about one in
twenty of those passes. So the field decides (`field_kind`):

- free text and contact fields (`TEXT`): any card number in any form is refused;
- identifier fields (`IDENTIFIER`: `order_id`, `customer.id`, keys such as `order_no`,
  `invoice_id`, `tracking_number`, ids in paths and queries): a plain run of ASCII
  digits is accepted, since merchants' ids are often long numbers; what is
  unmistakably a card is refused: digits grouped as cards print them
  (`4242 4242 4242 4242`, `3782 822463 10005`), a providers' sandbox card number, and
  digits that needed normalising (other scripts, invisible characters), which ids made
  by machines never do;
- phone fields (`PHONE`): a value written as a possible phone number (a country code and
  a length that country uses, by libphonenumber) is held to the identifier rule; anything
  else is scanned as free text. E.164 numbers have at most 15 digits, so no 16-19 digit
  card passes as a phone; a 13-15 digit one can (an old 13-digit Visa shaped like a
  German number), unless it is a sandbox card or printed like a card.

Logs are stricter than any field: `mask_card_numbers` masks every card number whatever
the field, an order id that happens to look like one included.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

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
# run long enough to be a card number, and one C-level search says so.
_ASCII_CANDIDATE = re.compile(f"[0-9](?:[{re.escape(_ascii_joiners())}]*[0-9]){{11}}")


def _few_digits(text: str) -> bool:
    """`text` cannot hold a card number: most strings checked (log fields, ids, names)
    are shorter than one, or ASCII without 12 digits in one run."""
    if len(text) < MIN_PAN_DIGITS:
        return True
    if text.isascii():
        return _ASCII_CANDIDATE.search(text) is None
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


class FieldKind(Enum):
    TEXT = "text"
    IDENTIFIER = "identifier"
    PHONE = "phone"


def holds_card_number(text: str, kind: FieldKind) -> bool:
    """The rule of the field: see the module's docstring."""
    if kind is FieldKind.IDENTIFIER or (kind is FieldKind.PHONE and is_phone_number(text)):
        return has_unmistakable_card_number(text)
    return has_card_number(text)


_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_FORBIDDEN_NAMES = frozenset(
    {
        "cardnumber",
        "cardno",
        "cardnum",
        "cardpan",
        "creditcardnumber",
        "debitcardnumber",
        "ccnumber",
        "ccnum",
        "ccno",
        "pan",
        "primaryaccountnumber",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cvn",
        "cvn2",
        "cvd",
        "csc",
        "cav2",
        "securitycode",
        "cardsecuritycode",
        "cardverificationcode",
        "cardverificationvalue",
        "track1",
        "track2",
        "trackdata",
    }
)
_CARD_WORDS = frozenset({"card", "cards", "pan", "cc", "ccn", "creditcard", "debitcard"})
_ACCOUNT_WORDS = frozenset({"account", "acct", "acc"})
_NUMBER_WORDS = frozenset({"number", "num", "no", "nr"})
_PHONE_WORDS = frozenset(
    {"phone", "tel", "telephone", "mobile", "cell", "cellphone", "msisdn", "fax", "whatsapp"}
)
_ID_WORDS = frozenset(
    {
        "id",
        "ids",
        "uid",
        "uuid",
        "guid",
        "no",
        "nr",
        "num",
        "number",
        "ref",
        "reference",
        "code",
        "sn",
        "serial",
        "seq",
        "sequence",
        "key",
        "tracking",
        "waybill",
        "awb",
        "barcode",
        "sku",
        "ean",
        "upc",
        "gtin",
        "isbn",
    }
)
# ids glued into one word: "orderid", "trackingno"
_ID_STEMS = frozenset(
    {
        "order",
        "invoice",
        "user",
        "customer",
        "member",
        "tracking",
        "shipment",
        "transaction",
        "txn",
        "trade",
        "ticket",
        "booking",
        "reservation",
        "receipt",
        "bill",
        "parcel",
        "item",
        "product",
    }
)
_ID_SUFFIXES = ("number", "num", "id", "no", "ref")


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(key)]


@functools.lru_cache(maxsize=4096)
def is_forbidden_name(key: str) -> bool:
    """A key named for card data or a security code (`card_number`, `cvv`, `pan`): refused
    whatever it holds, as no paymend request has one."""
    return "".join(_words(key)) in _FORBIDDEN_NAMES


def _glued_id(word: str) -> bool:
    for suffix in _ID_SUFFIXES:
        if word.endswith(suffix) and word[: -len(suffix)] in _ID_STEMS:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def field_kind(key: str | None, inherited: FieldKind = FieldKind.TEXT) -> FieldKind:
    """The kind of a field from its name (the last key on its path; list items take
    their list's). Card-like names (`card_ref`, `account_no`) are never identifiers."""
    if key is None:
        return inherited
    words = _words(key)
    if not words:
        return FieldKind.TEXT
    names = set(words)
    if names & _CARD_WORDS or (names & _ACCOUNT_WORDS and names & _NUMBER_WORDS):
        return FieldKind.TEXT
    last = words[-1]
    if names & _PHONE_WORDS and (last in _PHONE_WORDS or last in _NUMBER_WORDS):
        return FieldKind.PHONE
    if last in _ID_WORDS or _glued_id(last):
        return FieldKind.IDENTIFIER
    return FieldKind.TEXT


@dataclass(frozen=True, slots=True)
class Finding:
    """Where card data was found: the parameter to name in the error. A key that is
    itself a card number is never named; its parent is (None at the top)."""

    param: str | None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def find_card_data(value: object) -> Finding | None:
    """The first card number or card-data field in a JSON value, by the rules of each
    field (`field_kind`); keys are scanned as free text at any depth."""
    stack: list[tuple[str, FieldKind, object]] = [("", FieldKind.TEXT, value)]
    while stack:
        path, kind, item = stack.pop()
        if isinstance(item, Mapping):
            for k, v in item.items():
                key = str(k)
                if has_card_number(key):
                    return Finding(path or None)
                sub = _join(path, key)
                if is_forbidden_name(key):
                    return Finding(sub)
                stack.append((sub, field_kind(key), v))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", kind, v) for i, v in enumerate(item))
        elif _scalar(item) and holds_card_number(str(item), kind):
            return Finding(path or None)
    return None


def _scalar(item: object) -> bool:
    return isinstance(item, str | int | float) and not isinstance(item, bool)


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
