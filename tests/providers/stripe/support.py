"""What the Stripe connector's tests share: a clock they set, and the channel built
the way the framework will build it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from paymend.domain.money import Money
from paymend.providers.base import ChargeRequest
from paymend.providers.stripe import StripeProvider

API_KEY = "sk_test_paymend_0123456789"
WEBHOOK_SECRET = "whsec_paymend_test"


class SetClock:
    """Time stands where the test puts it."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
        self.ticks = 0.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.ticks

    async def sleep(self, seconds: float) -> None:
        self.ticks += seconds


def channel(base_url: str, **options: Any) -> StripeProvider:
    options.setdefault("api_key", API_KEY)
    options.setdefault("webhook_secret", WEBHOOK_SECRET)
    options.setdefault("clock", SetClock())
    return StripeProvider("stripe_eu", base_url=base_url, **options)


def charge(key: str, token: str | None, amount: int = 1000, currency: str = "EUR") -> ChargeRequest:
    return ChargeRequest(key, f"pay_{key}", Money(amount, currency), "card", token)
