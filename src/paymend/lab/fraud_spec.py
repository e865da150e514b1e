"""The `fraud:` section of a scenario (lab/fraud.py runs it): who the good customers are
and which attacks come at them. Part of the public scenario format: keep these names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from paymend.datafiles import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Amounts(_Strict):
    min: int = Field(gt=0)  # minor units
    max: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Amounts:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class Wave(_Strict):
    at: Duration = Field(ge=0)
    for_: Duration = Field(alias="for", gt=0)
    rate: float = Field(gt=0, description="attempts per simulated second (Poisson)")

    @property
    def end(self) -> float:
        return self.at + self.for_


class CardTesting(Wave):
    """Stolen cards tried with tiny amounts from a few IPs: a new card every attempt, a
    new device id every `cards_per_device` cards. Most cards decline with fraud-like codes
    (incorrect details, expired, suspected fraud); `approved` of them go through."""

    ips: int = Field(3, ge=1)
    cards_per_device: int = Field(7, ge=1)
    amount: Amounts = Amounts(min=100, max=300)
    approved: Share = 0.25


class AccountTakeover(Wave):
    """A good customer's account (and saved card) used from a new device and another
    country for a large amount; the card itself is good, so a charge goes through. The
    fraudster cannot pass the cardholder's 3-D Secure."""

    amount: Amounts = Amounts(min=300_000, max=800_000)
    country: str = Field("NL", pattern=r"^[A-Z]{2}$")  # where the fraudster's IP is


class Fraud(_Strict):
    """With this section the run decides risk with `rules` (the shipped file when not
    given) and every good payment carries its customer's id, device, IP, card
    fingerprint, countries and when their account was opened, as a checkout passes them."""

    customers: int = Field(300, ge=1)  # the good customers, each paying now and then
    home: str = Field("CN", pattern=r"^[A-Z]{2}$")  # their country, card's and IP's
    abroad: Share = 0.0  # good payments made from another country's IP (a trip)
    # customers whose account was opened in the month before the run; the others opened
    # theirs two months to three years before it (lab/fraud.py `customer_since`)
    new_customers: Share = 0.1
    rules: str | None = None
    card_testing: list[CardTesting] = Field(default_factory=list)
    account_takeover: list[AccountTakeover] = Field(default_factory=list)
