"""Card numbers are found wherever they hide; phone numbers are not mistaken for them."""

from __future__ import annotations

import pytest

from paymend.domain.masking import (
    contains_card_data,
    find_card_number,
    mask_email,
    mask_phone,
    mask_token,
    scrub_card_numbers,
)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "card 378282246310005 ok",
        "6212345678901232",
    ],
)
def test_card_numbers_are_found(text: str) -> None:
    assert find_card_number(text)


@pytest.mark.parametrize(
    "text", ["4111111111111112", "+8613812345678", "13812345678", "order-20260301-000123", "1234"]
)
def test_non_card_numbers_are_left_alone(text: str) -> None:
    assert not find_card_number(text)


def test_card_data_is_found_by_field_name_and_by_value() -> None:
    assert contains_card_data({"cvv": "123"}) == "cvv"
    assert contains_card_data({"metadata": {"note": "4111111111111111"}}) == "metadata.note"
    assert contains_card_data({"items": [{"x": 4111111111111111}]}) == "items[0].x"
    assert contains_card_data({"customer": {"phone": "+8613812345678"}}) is None


def test_masks() -> None:
    assert scrub_card_numbers("pan 4111111111111111 end") == "pan [card ****1111] end"
    assert mask_phone("+8613812345678") == "+86****5678"
    assert mask_email("li.wei@example.com") == "l***@example.com"
    assert mask_token("tok_1234567890abcdef") == "tok_…cdef"
