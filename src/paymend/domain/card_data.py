"""Deciding by the field whether a number that looks like a card number is one, and
finding card data in what merchants send (the text scan itself is `card_text.py`).

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
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from paymend.domain.card_text import (
    MIN_PAN_DIGITS,
    has_card_number,
    has_unmistakable_card_number,
    is_phone_number,
)


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


# a value's place in the body: (its parent's place, its key or list index); the
# parameter's name is written only for a finding, not for every value walked
_Place = tuple["_Place | None", "str | int"] | None
# what a key that holds no card number calls for: (names card data, its value's kind).
# Requests use a handful of keys, so the walk looks each up once; bounded, as keys come
# from the request, and never holding a key with a card number (that key is refused)
_KEYS: dict[str, tuple[bool, FieldKind]] = {}
_KEYS_MAX = 4096


def _key_rule(key: str) -> tuple[bool, FieldKind] | None:
    """(forbidden name, kind) of `key`; None when the key itself holds a card number."""
    rule = _KEYS.get(key)
    if rule is not None:
        return rule
    if has_card_number(key):
        return None
    rule = (is_forbidden_name(key), field_kind(key))
    if len(_KEYS) < _KEYS_MAX:
        _KEYS[key] = rule
    return rule


def _param(place: _Place) -> str | None:
    """The parameter's name as errors give it (`customer.id`, `items[2].note`)."""
    steps: list[str | int] = []
    while place is not None:
        place, step = place
        steps.append(step)
    name = ""
    for step in reversed(steps):
        name = _step(name, step)
    return name or None


def _step(name: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{name}[{step}]"
    return f"{name}.{step}" if name else step


def find_card_data(value: object) -> Finding | None:
    """The first card number or card-data field in a JSON value, by the rules of each
    field (`field_kind`); keys are scanned as free text at any depth."""
    stack: list[tuple[_Place, FieldKind, object]] = [(None, FieldKind.TEXT, value)]
    while stack:
        place, kind, item = stack.pop()
        if type(item) is str:
            # shorter than any card number: no rule can find one (nor ask libphonenumber)
            if len(item) >= MIN_PAN_DIGITS and holds_card_number(item, kind):
                return Finding(_param(place))
        elif isinstance(item, Mapping):
            for k, v in item.items():
                key = k if type(k) is str else str(k)
                rule = _key_rule(key)
                if rule is None:
                    return Finding(_param(place))
                forbidden, key_kind = rule
                if forbidden:
                    return Finding(_param((place, key)))
                stack.append(((place, key), key_kind, v))
        elif isinstance(item, list):
            stack.extend(((place, i), kind, v) for i, v in enumerate(item))
        elif _scalar(item) and holds_card_number(str(item), kind):
            return Finding(_param(place))
    return None


def _scalar(item: object) -> bool:
    return isinstance(item, str | int | float) and not isinstance(item, bool)
