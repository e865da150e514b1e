"""Money to Stripe's `amount` and back, exactly.

Stripe takes amounts as integers in the currency's smallest unit, like paymend, but its
idea of the smallest unit is not always ISO 4217's (https://docs.stripe.com/currencies,
"Zero-decimal currencies", "Three-decimal currencies" and "Special cases"):

- zero-decimal for Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF
  XPF. ISO agrees except for MGA, which ISO gives two decimals: 1 MGA is 100 paymend
  minor units but `amount=1` at Stripe.
- ISK stays a two-decimal currency in Stripe's API though ISO gives it none, and its
  amounts must be multiples of 100 (https://support.stripe.com/questions/
  deprecation-of-fractional-isk-charges-and-refunds): 1 ISK is `amount=100`.
- three-decimal (BHD JOD KWD OMR TND): the last digit must be 0.

An amount that cannot be said exactly in Stripe's units is refused, never rounded: a
rounding error in money is a bug someone pays for.
"""

from __future__ import annotations

from paymend.domain.currencies import EXPONENTS
from paymend.domain.money import Money

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
# currencies Stripe writes with two decimals whatever ISO says
TWO_DECIMAL_AT_STRIPE = frozenset({"ISK"})


class UnrepresentableAmount(ValueError):
    """The amount has no exact equivalent in Stripe's units for its currency."""


def stripe_exponent(currency: str) -> int:
    """Digits after the decimal point in Stripe's `amount` for `currency`."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in TWO_DECIMAL_AT_STRIPE:
        return 2
    return EXPONENTS[currency]


def to_stripe(money: Money) -> tuple[int, str]:
    """(amount, currency) as Stripe's API takes them: lower-case ISO code."""
    shift = stripe_exponent(money.currency) - money.exponent
    if shift >= 0:
        amount = money.minor * 10**shift
    else:
        amount, rest = divmod(money.minor, 10**-shift)
        if rest:
            raise UnrepresentableAmount(
                f"{money.minor} minor units of {money.currency} is not a whole number of "
                f"Stripe's units ({money.currency} has {stripe_exponent(money.currency)} "
                "decimals at Stripe)"
            )
    if money.currency in THREE_DECIMAL and amount % 10:
        raise UnrepresentableAmount(f"Stripe takes {money.currency} amounts ending in 0 only")
    if money.currency == "ISK" and amount % 100:
        raise UnrepresentableAmount("Stripe takes whole ISK only")
    return amount, money.currency.lower()


def from_stripe(amount: int, currency: str) -> Money:
    """paymend's Money for Stripe's (`amount`, `currency`); exact or ValueError."""
    code = currency.upper()
    if code not in EXPONENTS:
        raise UnrepresentableAmount(f"'{currency}' is not an ISO 4217 currency")
    shift = EXPONENTS[code] - stripe_exponent(code)
    if shift >= 0:
        return Money(amount * 10**shift, code)
    minor, rest = divmod(amount, 10**-shift)
    if rest:
        raise UnrepresentableAmount(f"{amount} {currency} has a fraction ISO 4217 does not")
    return Money(minor, code)
