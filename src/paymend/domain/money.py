"""Money as integer minor units of one ISO 4217 currency. Never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from paymend.domain.currencies import EXPONENTS
from paymend.domain.errors import InvalidInput

MAX_MINOR_UNITS = 10**12 - 1
"""Upper bound of one payment: beyond any real checkout, far inside a BIGINT."""

_DECIMAL_RE = re.compile(r"^-?\d+(\.\d+)?$")


def check_currency(code: str, *, param: str = "currency") -> str:
    """Return the canonical (upper-case) code or raise `currency_unsupported`."""
    if not isinstance(code, str) or code.upper() not in EXPONENTS:
        raise InvalidInput(
            "currency_unsupported",
            f"'{code}' is not an ISO 4217 currency paymend accepts",
            param=param,
        )
    return code.upper()


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: `minor` units (cents, fen, yen...) of `currency`."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise InvalidInput("amount_invalid", "amount must be an integer of minor units")
        if self.currency not in EXPONENTS:
            raise InvalidInput(
                "currency_unsupported", f"'{self.currency}' is not an ISO 4217 currency"
            )

    @property
    def exponent(self) -> int:
        return EXPONENTS[self.currency]

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a decimal string in major units ("12.34" CNY -> 1234 fen).

        Rejects fractions finer than the currency allows ("1.5" JPY, "1.234" EUR) rather
        than rounding: a rounding error in money is a bug someone pays for.
        """
        code = check_currency(currency)
        if not isinstance(text, str) or not _DECIMAL_RE.match(text.strip()):
            raise InvalidInput("amount_invalid", f"'{text}' is not a decimal amount")
        try:
            value = Decimal(text.strip())
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards
            raise InvalidInput("amount_invalid", f"'{text}' is not a decimal amount") from exc
        exp = EXPONENTS[code]
        scaled = value.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise InvalidInput(
                "amount_precision",
                f"{code} has {exp} decimal place{'s' if exp != 1 else ''}; '{text}' is finer",
                param="amount",
            )
        return cls(int(scaled), code)

    def format(self) -> str:
        """Major units as a plain decimal string: Money(1234, 'CNY') -> '12.34'."""
        exp = self.exponent
        if exp == 0:
            return str(self.minor)
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**exp)
        return f"{sign}{whole}.{frac:0{exp}d}"

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise InvalidInput(
                "currency_mismatch",
                f"cannot combine {self.currency} with {other.currency}",
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def is_positive(self) -> bool:
        return self.minor > 0

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"


def payment_amount(minor: object, currency: object) -> Money:
    """Validate an amount as the API receives it: a positive integer of minor units."""
    code = check_currency(currency if isinstance(currency, str) else repr(currency))
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise InvalidInput(
            "amount_invalid",
            "amount must be an integer number of minor units (e.g. 1999 for 19.99)",
            param="amount",
        )
    if minor <= 0:
        raise InvalidInput("amount_too_small", "amount must be greater than zero", param="amount")
    if minor > MAX_MINOR_UNITS:
        raise InvalidInput(
            "amount_too_large",
            f"amount must be at most {MAX_MINOR_UNITS} minor units",
            param="amount",
        )
    return Money(minor, code)
