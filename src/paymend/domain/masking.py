"""Masking of personal and payment data before it reaches a log, a response or a row.

Card numbers are recognised by shape and the Luhn check, so a PAN hidden in a free-text
field is caught as well as one in a field called `card_number`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# 13-19 digits, optionally grouped by spaces or dashes, starting like a card of the major
# networks (2-6: Mastercard, Amex, Visa, Discover, UnionPay 62...), not preceded by "+"
# or a digit: international phone numbers are not card numbers.
_PAN_RE = re.compile(r"(?<![\d+])[2-6](?:[ -]?\d){12,18}(?![\d])")
_PHONE_KEYS = frozenset({"phone", "mobile", "phone_number", "tel"})
_FORBIDDEN_KEY_RE = re.compile(r"^(card_?number|pan|cvv2?|cvc2?|security_?code|track_?[12])$", re.I)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def find_card_number(text: str) -> bool:
    """True if `text` holds a 13-19 digit sequence that passes the Luhn check."""
    for match in _PAN_RE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return True
    return False


def contains_card_data(value: Any) -> str | None:
    """The path of the first card number or CVV-like field in a JSON value, else None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Mapping):
            for k, v in item.items():
                key = str(k)
                sub = f"{path}.{key}" if path else key
                if _FORBIDDEN_KEY_RE.match(key) or find_card_number(key):
                    return sub
                if key.lower() not in _PHONE_KEYS:
                    stack.append((sub, v))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
        elif (isinstance(item, str) and find_card_number(item)) or (
            isinstance(item, int) and not isinstance(item, bool) and find_card_number(str(item))
        ):
            return path
    return None


def scrub_card_numbers(text: str) -> str:
    """Replace every Luhn-valid card number in `text` by a masked form."""

    def repl(m: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return "[card ****" + digits[-4:] + "]"
        return m.group()

    return _PAN_RE.sub(repl, text)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = [c for c in phone if c.isdigit()]
    if len(digits) < 7:
        return "***"
    return phone[:3] + "****" + "".join(digits[-4:])


def mask_email(email: str | None) -> str | None:
    if not email:
        return email
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    return (local[:1] or "*") + "***@" + domain


def mask_token(token: str | None) -> str | None:
    if not token:
        return token
    if len(token) <= 8:
        return "****"
    return token[:4] + "…" + token[-4:]


def mask_customer(customer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": customer.get("id"),
        "locale": customer.get("locale"),
        "phone": mask_phone(customer.get("phone")),
        "email": mask_email(customer.get("email")),
    }
