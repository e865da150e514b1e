"""Money to Stripe's `amount` and back: exact, or refused (https://docs.stripe.com/currencies)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymend.domain.currencies import EXPONENTS
from paymend.domain.money import Money
from paymend.providers.stripe.amounts import UnrepresentableAmount, from_stripe, to_stripe


@pytest.mark.parametrize(
    ("money", "sent"),
    [
        (Money(1234, "EUR"), (1234, "eur")),  # cents both ways
        (Money(500, "JPY"), (500, "jpy")),  # zero-decimal both ways
        (Money(300, "MGA"), (3, "mga")),  # ISO: 2 decimals; Stripe: none
        (Money(5, "ISK"), (500, "isk")),  # ISO: none; Stripe: 2, whole krónur
        (Money(5120, "KWD"), (5120, "kwd")),  # three decimals, last one 0
    ],
)
def test_amounts_stripe_takes(money: Money, sent: tuple[int, str]) -> None:
    assert to_stripe(money) == sent
    assert from_stripe(*sent) == money


@pytest.mark.parametrize(
    "money",
    [Money(150, "MGA"), Money(5124, "KWD")],
    ids=["a fraction of an ariary", "a last digit Stripe rounds"],
)
def test_amounts_stripe_cannot_take_are_refused_not_rounded(money: Money) -> None:
    with pytest.raises(UnrepresentableAmount):
        to_stripe(money)


def test_an_amount_iso_cannot_hold_is_refused() -> None:
    with pytest.raises(UnrepresentableAmount):
        from_stripe(550, "isk")


@given(st.sampled_from(sorted(EXPONENTS)), st.integers(min_value=0, max_value=10**12))
def test_every_amount_stripe_takes_comes_back_the_same(currency: str, minor: int) -> None:
    money = Money(minor, currency)
    try:
        sent = to_stripe(money)
    except UnrepresentableAmount:
        return
    assert from_stripe(*sent) == money
