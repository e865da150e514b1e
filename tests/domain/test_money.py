"""Money is exact: integer minor units, the currency's own exponent, no mixing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymend.domain.currencies import EXPONENTS
from paymend.domain.errors import InvalidInput
from paymend.domain.money import MAX_MINOR_UNITS, Money, payment_amount


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("CNY", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_currency_exponents_follow_iso_4217(currency: str, exponent: int) -> None:
    assert Money(1, currency).exponent == exponent


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "CNY", 1234),
        ("0.01", "CNY", 1),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("7", "USD", 700),
    ],
)
def test_parse_major_units(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"), [("1.5", "JPY"), ("12.345", "CNY"), ("0.0001", "KWD"), ("1.001", "USD")]
)
def test_parse_rejects_fractions_finer_than_the_exponent(text: str, currency: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Money.parse(text, currency)
    assert info.value.code == "amount_precision"


@pytest.mark.parametrize("text", ["", "abc", "1e5", "1,000", "--1", "1.2.3"])
def test_parse_rejects_non_decimals(text: str) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(text, "CNY")


def test_arithmetic_refuses_mixed_currencies() -> None:
    with pytest.raises(InvalidInput) as info:
        _ = Money(100, "CNY") + Money(100, "USD")
    assert info.value.code == "currency_mismatch"
    with pytest.raises(InvalidInput):
        _ = Money(100, "CNY") < Money(100, "JPY")


def test_money_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(InvalidInput):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Money(100, "XXX")


@pytest.mark.parametrize(
    ("minor", "code"),
    [
        (0, "amount_too_small"),
        (-5, "amount_too_small"),
        (MAX_MINOR_UNITS + 1, "amount_too_large"),
        (1.5, "amount_invalid"),
        ("100", "amount_invalid"),
        (True, "amount_invalid"),
    ],
)
def test_payment_amount_validation(minor: object, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        payment_amount(minor, "CNY")
    assert info.value.code == code
    assert info.value.param == "amount"


def test_payment_amount_normalises_currency_case() -> None:
    assert payment_amount(100, "cny") == Money(100, "CNY")


@given(
    st.sampled_from(sorted(EXPONENTS)),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=-(10**15), max_value=10**15),
)
def test_addition_and_subtraction_are_exact(currency: str, a: int, b: int) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y).minor == a + b
    assert (x + y - y) == x


@given(st.sampled_from(sorted(EXPONENTS)), st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_round_trips(currency: str, minor: int) -> None:
    money = Money(minor, currency)
    assert Money.parse(money.format(), currency) == money
