"""Masking of personal data before it reaches a log or a response.

Card numbers are a matter of their own: `card_data.py` finds and masks them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from paymend.domain.card_text import mask_card_numbers


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


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# seven or more digits, maybe with separators between: a phone, an id card or an account
_LONG_NUMBER = re.compile(r"\+?\d(?:[ ().-]{0,2}\d){6,}")


def mask_free_text(text: str) -> str:
    """What a customer wrote, fit to store: card numbers as `[card ****1234]`, emails as
    `l***@example.com`, and any other number of seven digits or more (a phone, an id
    card, an account) down to its last four."""
    text = mask_card_numbers(text)
    text = _EMAIL.sub(lambda m: mask_email(m.group()) or "***", text)
    return _LONG_NUMBER.sub(lambda m: "***" + re.sub(r"\D", "", m.group())[-4:], text)
